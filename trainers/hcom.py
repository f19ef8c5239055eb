"""hCom (Tang et al., 2018): high levels that communicate - each agent's Q over goals also
sees the mean of the other agents' hidden vectors (CommNet) - trained on ACER's
time-consistent joint rows, over a shared goal-conditioned low level.

    python trainers/hcom.py --env-kwargs '{"layout": "random", "n_agents": 3}'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hmarl.core import redefault
from hmarl.trainers import hierarchical
from hmarl.training import TrainResult


@dataclass
class Config(hierarchical.Config):
    """Train hCom; the defaults learn trash collection's room on a laptop CPU in minutes."""

    high_level: str = redefault(hierarchical.Config, "high_level", "comm")


def main(argv: Sequence[str] | None = None) -> TrainResult:
    return hierarchical.main(argv, Config, "hcom")


if __name__ == "__main__":
    main()
