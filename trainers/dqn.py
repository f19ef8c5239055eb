"""DQN: double Q-learning with optional dueling head and n-step returns.

python trainers/dqn.py --env CartPole-v1
python trainers/dqn.py --env trash_collection_v0 --env-kwargs '{"layout": "random", "extra_actions": 100}'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.core import option
from hmarl.training import Budget, EnvSpec, RunConfig, TrainResult, parse_config, train


@dataclass
class Config(RunConfig, DQNConfig):
    """Train DQN on a batched environment; defaults solve CartPole-v1 on a laptop CPU."""

    total_steps: int = option(50_000, "environment steps to train for (summed over copies)")
    eval_every: int = option(5_000, "environment steps between greedy evaluations (0 disables)")
    target_value: float = option(475.0, "report the first step at which the metric reaches this (nan: none)")
    updates_per_round: int = option(2, "updates in each round")
    lr: float = option(1e-3, "learning rate at --base-batch-size (before --lr-scaling)")
    n_step: int = option(3, "steps summed in the bootstrapped return")
    exploration_fraction: float = option(0.2, "fraction of the environment steps over which epsilon decays")
    epsilon_end: float = option(0.02, "exploration rate after the decay")


def make_agent(
    config: RunConfig,
    spec: EnvSpec,
    budget: Budget,
    device: torch.device,
    agent_cls: type[DQN] = DQN,
    **agent_kwargs: Any,
) -> DQN:
    """A DQN-family agent (``agent_cls``) sized for ``spec``; one replay stream per copy and agent.
    ``config`` is a run's configuration with a DQN section; ``agent_kwargs`` go to ``agent_cls`` as well."""
    if not isinstance(config, DQNConfig):
        raise TypeError(f"{type(config).__name__} has no DQN options; make_agent needs a DQN run's configuration")
    if not spec.n_actions:
        raise ValueError(
            f"env={config.env!r} has a continuous action space; {agent_cls.__name__} needs a discrete action space "
            "(for continuous control use sac_n)"
        )
    return agent_cls(
        config,
        obs_dim=spec.obs_dim,
        n_actions=spec.n_actions,
        num_streams=spec.num_envs * spec.n_agents,
        total_steps=budget.total_steps,
        total_updates=budget.total_updates,
        device=device,
        seed=config.seed,
        **agent_kwargs,
    )


def main(argv: Sequence[str] | None = None) -> TrainResult:
    return train(parse_config(Config, argv, __doc__), make_agent, "dqn")


if __name__ == "__main__":
    main()
