"""QMIX over primitive actions, the flat cooperative baseline (no hierarchy).

python trainers/qmix.py                                                     # trash collection's room
python trainers/qmix.py --env basketball_defense_v1 --env-kwargs '{"n_players": 3}' --team-reward mean
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hmarl.agents.qmix import QMIX, QMIXConfig
from hmarl.core import option, redefault
from hmarl.training import Budget, EnvSpec, RunConfig, TrainResult, parse_config, train


@dataclass
class Config(RunConfig, QMIXConfig):
    """Train flat QMIX on a batched multi-agent environment (the hierarchical learners' baseline)."""

    env: str = option("trash_collection_v0", "environment: an hmarl.envs module (multi-agent, discrete actions)")
    env_kwargs: dict = option({"layout": "room"}, "keyword arguments of the environment as JSON")
    num_envs: int = option(32, "environment copies stepped together")
    total_steps: int = option(150_000, "environment steps to train for (summed over copies)")
    learning_starts: int = option(5_000, "environment steps before the first update")
    eval_every: int = option(25_000, "environment steps between greedy evaluations (0 disables)")
    eval_episodes: int = option(100, "episodes per greedy evaluation")
    target_value: float = option(0.95, "report the first step at which the metric reaches this (nan: none)")
    # The hierarchical learners' large batch at the original's rate for batch 64, scaled by the sqrt rule.
    lr: float = option(2.5e-4, "learning rate at --base-batch-size (before --lr-scaling)")
    lr_scaling: str = redefault(QMIXConfig, "lr_scaling", "sqrt")
    batch_size: int = option(512, "joint transitions per update")
    base_batch_size: int = option(64, "batch size at which --lr was tuned")
    target_update_period: int = option(100, "updates between hard target copies")
    exploration_fraction: float = option(0.3, "fraction of the environment steps over which epsilon decays")


def make_agent(config: Config, spec: EnvSpec, budget: Budget, device: torch.device) -> QMIX:
    return QMIX(
        config,
        spec.obs_dim,
        spec.state_dim,
        spec.n_agents,
        spec.n_actions,
        spec.num_envs,
        total_steps=budget.total_steps,
        total_updates=budget.total_updates,
        device=device,
        seed=config.seed,
    )


def main(argv: Sequence[str] | None = None) -> TrainResult:
    return train(parse_config(Config, argv, __doc__), make_agent, "qmix")


if __name__ == "__main__":
    main()
