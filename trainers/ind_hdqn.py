"""Ind-hDQN (Tang et al., 2018): independent high levels over goals, one per agent, on a
shared goal-conditioned low level; ACER and low-level pre-training included.

    python trainers/ind_hdqn.py --env-kwargs '{"layout": "room"}'
    python trainers/ind_hdqn.py --env-kwargs '{"layout": "coordination"}' --total-steps 400000
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hmarl.core import redefault
from hmarl.trainers import hierarchical
from hmarl.training import TrainResult


@dataclass
class Config(hierarchical.Config):
    """Train Ind-hDQN; the defaults learn trash collection's room on a laptop CPU in minutes."""

    high_level: str = redefault(hierarchical.Config, "high_level", "independent")


def main(argv: Sequence[str] | None = None) -> TrainResult:
    return hierarchical.main(argv, Config, "ind_hdqn")


if __name__ == "__main__":
    main()
