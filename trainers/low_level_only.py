"""Low-level-only baseline (Tang et al., 2018): goals drawn uniformly among the feasible
ones over the trained goal-conditioned low level; only the low level learns.

    python trainers/low_level_only.py --env basketball_defense_v1 --env-kwargs '{}' --interrupt
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hmarl.core import redefault
from hmarl.trainers import hierarchical
from hmarl.training import TrainResult


@dataclass
class Config(hierarchical.Config):
    """Train the low level under random goals; greedy evaluation keeps the goals random."""

    high_level: str = redefault(hierarchical.Config, "high_level", "random")


def main(argv: Sequence[str] | None = None) -> TrainResult:
    return hierarchical.main(argv, Config, "low_level_only")


if __name__ == "__main__":
    main()
