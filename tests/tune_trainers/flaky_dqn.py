"""A DQN trainer script that fails for large learning rates: the failing trainer of tests/test_tune_ray.py."""

from __future__ import annotations

from collections.abc import Sequence

from hmarl.trainers import dqn
from hmarl.training import TrainResult, parse_config, train

Config = dqn.Config
FAILS_ABOVE_LR = 1e-3


def main(argv: Sequence[str] | None = None) -> TrainResult:
    config = parse_config(Config, argv)
    if config.lr > FAILS_ABOVE_LR:
        raise RuntimeError(f"flaky trainer: lr={config.lr:g} is above {FAILS_ABOVE_LR:g}")
    return train(config, dqn.make_agent, "dqn")
