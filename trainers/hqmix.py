"""hQmix (Tang et al., 2018): the agents' high-level values over goals mixed by a monotonic
QMIX network whose weights come from hypernetworks on the global state, trained on
ACER's time-consistent joint rows, over a shared goal-conditioned low level.

    python trainers/hqmix.py                                   # room, a few minutes on a CPU
    python trainers/hqmix.py --env basketball_defense_v1 --env-kwargs '{}' --interrupt \
        --team-reward mean --mixer-embed 32                    # basketball: one reward shared by all
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hmarl.core import redefault
from hmarl.trainers import hierarchical
from hmarl.training import TrainResult


@dataclass
class Config(hierarchical.Config):
    """Train hQmix; the defaults learn trash collection's room on a laptop CPU in minutes."""

    high_level: str = redefault(hierarchical.Config, "high_level", "qmix")
    # Lower and unscaled rates: the mixed value diverges at the independent learners' rates
    # (docs/results/reproduction.md#why-hqmixs-defaults-are-what-they-are).
    lr_scaling: str = redefault(hierarchical.Config, "lr_scaling", "none")
    lr: float = redefault(hierarchical.Config, "lr", 1e-4)


def main(argv: Sequence[str] | None = None) -> TrainResult:
    return hierarchical.main(argv, Config, "hqmix")


if __name__ == "__main__":
    main()
