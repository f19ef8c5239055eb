"""AE-DQN: DQN with an action-elimination network and a linear contextual bandit.

python trainers/ae_dqn.py
python trainers/ae_dqn.py --env-kwargs '{"layout": "random", "n_agents": 1, "extra_actions": 100}'
python trainers/ae_dqn.py --env CartPole-v1 --target-value 475
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hmarl.agents.ae_dqn import AEDQN, AEDQNConfig
from hmarl.core import option
from hmarl.trainers import dqn
from hmarl.training import Budget, EnvSpec, RunConfig, TrainResult, parse_config, train

SMALL_TRASH_TASK = {
    "layout": "random",
    "n_agents": 1,
    "extra_actions": 100,
    "width": 4,
    "height": 4,
    "n_trash": 1,
    "n_dumps": 1,
    "wall_density": 0.0,
    "max_cycles": 30,
}


@dataclass
class Config(RunConfig, AEDQNConfig):
    """Train AE-DQN on a batched environment; the defaults learn one-agent trash collection
    on small random layouts with 100 extra actions that never do anything."""

    env: str = option("trash_collection_v0", "environment: an hmarl.envs module or a gymnasium id")
    env_kwargs: dict = option(SMALL_TRASH_TASK, "keyword arguments of the environment as JSON")
    total_steps: int = option(300_000, "environment steps to train for (summed over copies)")
    target_metric: str = option("success", "evaluation metric compared with --target-value (return, success, ...)")
    target_value: float = option(0.9, "report the first step at which the metric reaches this (nan: none)")
    num_envs: int = option(16, "environment copies stepped together")
    lr: float = option(1e-3, "learning rate at --base-batch-size (before --lr-scaling)")
    n_step: int = option(3, "steps summed in the bootstrapped return")
    hidden_sizes: tuple[int, ...] = option((128, 128), "hidden layer widths of the Q-network")
    exploration_fraction: float = option(0.5, "fraction of the environment steps over which epsilon decays")


def make_agent(config: Config, spec: EnvSpec, budget: Budget, device: torch.device) -> AEDQN:
    agent = dqn.make_agent(config, spec, budget, device, agent_cls=AEDQN, obs_grid=spec.obs_grid)
    if not isinstance(agent, AEDQN):
        raise TypeError(f"dqn.make_agent built a {type(agent).__name__}, not the AEDQN asked for")
    return agent


def main(argv: Sequence[str] | None = None) -> TrainResult:
    return train(parse_config(Config, argv, __doc__), make_agent, "ae_dqn")


if __name__ == "__main__":
    main()
