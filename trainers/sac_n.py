"""SAC-N and LB-SAC, online from a gymnasium environment or offline from a dataset.

    python trainers/sac_n.py online --env Pendulum-v1
    python trainers/sac_n.py offline --dataset datasets/Pendulum-v1-medium.hdf5
    # LB-SAC: scale the batch, not the ensemble; lr = 3e-4 * sqrt(batch / 256)
    python trainers/sac_n.py offline --dataset datasets/Hopper-v5-medium.hdf5 \\
        --batch-size 10000 --lr-scaling sqrt --ensemble-size 25

Datasets come from ``python trainers/collect.py``; nothing is downloaded.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hmarl.agents.sac_n import SACN, SACNConfig
from hmarl.core import option
from hmarl.data import OfflineDataset
from hmarl.training import (
    Budget,
    EnvSpec,
    OfflineResult,
    OfflineRunConfig,
    RunConfig,
    TrainResult,
    parse_config,
    train,
    train_offline,
)

ALGORITHM = "sac_n"


@dataclass
class OnlineConfig(RunConfig, SACNConfig):
    """Train SAC-N online; the defaults (twin critics, as in SAC) solve Pendulum-v1 on a laptop CPU."""

    env: str = option("Pendulum-v1", "gymnasium id with a bounded Box action space")
    num_envs: int = option(1, "environment copies stepped together")
    total_steps: int = option(15_000, "environment steps to train for (summed over copies)")
    learning_starts: int = option(1_000, "environment steps before the first update")
    random_steps: int = option(1_000, "environment steps acted uniformly at random before the policy acts")
    ensemble_size: int = option(2, "number of critics N")
    hidden_sizes: tuple[int, ...] = option((256, 256), "hidden layer widths of the actor and of each critic")
    buffer_size: int = option(100_000, "replay capacity in transitions")
    eval_every: int = option(2_500, "environment steps between greedy evaluations (0 disables)")
    eval_episodes: int = option(10, "episodes per greedy evaluation")
    target_value: float = option(-200.0, "report the first step at which the metric reaches this (nan: none)")
    checkpoint_every: int = option(5_000, "updates between checkpoints (0: by --checkpoint-minutes and at the end only)")


@dataclass
class OfflineConfig(OfflineRunConfig, SACNConfig):
    """Train SAC-N offline from a D4RL-layout dataset (defaults: SAC-N, batch 256, N = 10)."""


def make_online_agent(config: OnlineConfig, spec: EnvSpec, budget: Budget, device: torch.device) -> SACN:
    if not spec.action_low:
        raise ValueError(f"env={config.env!r} has discrete actions; SAC-N needs a bounded Box action space")
    return SACN(
        config,
        obs_dim=spec.obs_dim,
        action_low=spec.action_low,
        action_high=spec.action_high,
        total_updates=budget.total_updates,
        num_streams=spec.num_envs * spec.n_agents,
        device=device,
        seed=config.seed,
    )


def make_offline_agent(config: OfflineConfig, dataset: OfflineDataset, spec: EnvSpec, device: torch.device) -> SACN:
    if not spec.action_low:
        raise ValueError(f"the evaluation env of {config.dataset!r} has discrete actions; SAC-N needs a Box")
    agent = SACN(
        config,
        obs_dim=spec.obs_dim,
        action_low=spec.action_low,
        action_high=spec.action_high,
        total_updates=config.total_updates,
        device=device,
        seed=config.seed,
    )
    agent.load_dataset(dataset)
    return agent


def train_online(config: OnlineConfig) -> TrainResult:
    return train(config, make_online_agent, ALGORITHM)


def train_from_dataset(config: OfflineConfig) -> OfflineResult:
    return train_offline(config, make_offline_agent, ALGORITHM)


MODES = {"online": OnlineConfig, "offline": OfflineConfig}


def main(argv: Sequence[str] | None = None) -> TrainResult | OfflineResult:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = f"usage: sac_n.py {{{','.join(MODES)}}} [options]  (sac_n.py online --help lists the options)"
    if argv and argv[0] in ("-h", "--help"):
        print(f"{__doc__}\n{usage}")
        raise SystemExit(0)
    if not argv or argv[0] not in MODES:
        raise SystemExit(f"{usage}\n{'no mode given' if not argv else f'unknown mode {argv[0]!r}'}")
    mode, options = argv[0], argv[1:]
    description = f"{__doc__}\n{MODES[mode].__doc__}"
    if mode == "online":
        return train_online(parse_config(OnlineConfig, options, description))
    return train_from_dataset(parse_config(OfflineConfig, options, description))


if __name__ == "__main__":
    main()
