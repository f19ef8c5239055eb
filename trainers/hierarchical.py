"""Hierarchical trainers (Ind-hDQN, hCom, hQmix, low-level-only) on environments with options.

    python trainers/hierarchical.py --high-level qmix --env-kwargs '{"layout": "room"}'

``ind_hdqn.py``, ``hcom.py``, ``hqmix.py`` and ``low_level_only.py`` are this trainer
with their high level as the default. ``--gif PATH`` saves a greedy episode of the
trained agent as an animated GIF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmarl.core import option
from hmarl.hier import HierarchicalAgent, HierConfig, HierSpec
from hmarl.hier.config import OptionsEnv
from hmarl.training import (
    BatchedEnv,
    Budget,
    EnvSpec,
    RunConfig,
    TrainResult,
    load_checkpoint,
    make_vector_env,
    parse_config,
    restore_agent,
    train,
)
from hmarl.training.config import config_from_dict
from hmarl.training.envs import make_rendering_env, render_frame
from hmarl.training.loop import attach_env, budget_of, to_tensors

DEFAULT_OPTION_LEN = 30
COORDINATION_OPTION_LEN = 15


@dataclass
class Config(RunConfig, HierConfig):
    """Train a hierarchical learner; defaults learn trash collection's room in minutes on a CPU."""

    env: str = option("trash_collection_v0", "environment with options: an hmarl.envs module")
    env_kwargs: dict = option({"layout": "room"}, 'keyword arguments of the environment as JSON, e.g. \'{"layout": "ring"}\'')
    num_envs: int = option(32, "environment copies stepped together")
    total_steps: int = option(300_000, "environment steps to train for (summed over copies)")
    learning_starts: int = option(5_000, "environment steps before the first update")
    train_every: int = option(1, "vector steps between rounds of updates")
    eval_every: int = option(25_000, "environment steps between greedy evaluations (0 disables)")
    eval_episodes: int = option(100, "episodes per greedy evaluation")
    target_value: float = option(0.95, "report the first step at which the metric reaches this (nan: none)")
    log_every: int = option(50, "updates between logged training metrics")
    checkpoint_every: int = option(0, "updates between checkpoints (0: by --checkpoint-minutes and at the end only)")
    gif: str = option("", "after training, save a greedy episode as an animated GIF at this path")
    torch_threads: int = option(1, "CPU threads for torch (small networks run fastest on one; 0: torch's default)")


def load_agent(path: str | Path, num_envs: int) -> tuple[HierarchicalAgent, Config, BatchedEnv]:
    """The trained agent of the checkpoint at ``path`` (a file, or a run directory's newest),
    on the CPU, with its configuration and a fresh evaluation env of ``num_envs`` copies."""
    checkpoint = load_checkpoint(path)
    config = config_from_dict(Config, checkpoint["config"])
    # The agent's state (running options, ACER's open rows) is sized by the training copies.
    training_spec = EnvSpec.of(make_vector_env(config.env, config.num_envs, config.env_kwargs))
    agent = make_agent(config, training_spec, budget_of(config), torch.device("cpu"))
    restore_agent(agent, checkpoint["agent"])
    return agent, config, make_vector_env(config.env, num_envs, config.env_kwargs)


def option_len_of(config: Config) -> int:
    """The option timeout: as configured, else the original's (15 on coordination, 30 elsewhere)."""
    if config.option_len < 0:
        raise ValueError(f"option_len must be >= 0 (0: the default), got {config.option_len}")
    if config.option_len:
        return config.option_len
    return COORDINATION_OPTION_LEN if config.env_kwargs.get("layout") == "coordination" else DEFAULT_OPTION_LEN


def make_agent(config: Config, spec: EnvSpec, budget: Budget, device: torch.device) -> HierarchicalAgent:
    probe = make_vector_env(config.env, 1, config.env_kwargs)
    if not isinstance(probe, OptionsEnv):
        raise ValueError(
            f"env={config.env!r} has no options interface (goal_names, goal_mask, ...); hierarchical learners need "
            "an hmarl.envs environment such as trash_collection_v0 or basketball_defense_v1"
        )
    return HierarchicalAgent(
        config,
        HierSpec.of(probe, num_envs=spec.num_envs),
        option_len=option_len_of(config),
        total_updates=budget.total_updates,
        device=device,
        seed=config.seed,
    )


@torch.no_grad()
def save_greedy_gif(config: Config, agent: HierarchicalAgent, path: str, seed: int) -> int:
    """Play one greedy episode with ``agent`` and save its frames to ``path``; returns its length."""
    from hmarl.envs._render import save_gif

    env = make_rendering_env(config.env, 1, {**config.env_kwargs, "render_mode": "rgb_array"})
    obs, _ = env.reset(seed=seed)
    attach_env(agent, env, evaluation=True)
    frames = [render_frame(env)]
    done = np.zeros(1, dtype=bool)
    while not done.all():
        actions = agent.act_greedy(to_tensors(obs, agent.device))
        obs, _, terminated, truncated, _ = env.step(actions.cpu().numpy())
        done = terminated | truncated
        frames.append(render_frame(env))
    save_gif(frames, path, fps=env.metadata.get("render_fps", 10))
    return len(frames) - 1


def main(argv: Sequence[str] | None = None, config_cls: type[Config] = Config, name: str = "hierarchical") -> TrainResult:
    """Parse ``argv`` into ``config_cls`` (a :class:`Config`) and train."""
    config = parse_config(config_cls, argv, config_cls.__doc__)
    if config.torch_threads < 0:
        raise ValueError(f"torch_threads must be >= 0 (0: torch's default), got {config.torch_threads}")
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    trained: list[HierarchicalAgent] = []

    def build(*args: Any) -> HierarchicalAgent:
        trained.append(make_agent(*args))
        return trained[-1]

    result = train(config, build, name)
    if config.gif:
        length = save_greedy_gif(config, trained[-1], config.gif, config.seed)
        print(f"saved a greedy episode of {length} steps to {config.gif}", flush=True)
    return result


if __name__ == "__main__":
    main()
