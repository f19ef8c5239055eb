"""Collect offline datasets of named qualities for a gymnasium environment.

    python trainers/collect.py --env Pendulum-v1
    python trainers/collect.py --env Hopper-v5 --total-steps 300000 --num-transitions 200000
    python trainers/collect.py --env Pendulum-v1 --policy-run checkpoints/<run-name>   # reuse a trained run
                                                       # (trained with --checkpoint-replay for the replay dataset)

The qualities follow D4RL's recipe, with an online SAC-N run (``trainers/sac_n.py
online``) as the policy source; it is trained here, or read from the checkpoints of
an earlier run:

- ``random``: a policy drawing actions uniformly from the action box;
- ``expert``: the best policy of the run;
- ``medium``: the policy whose return is closest to ``random + medium_fraction *
  (expert - random)``, one third of the way by default;
- ``replay``: everything the run's replay held when the medium policy was saved.

Random, medium and expert datasets hold whole episodes of the stochastic policy
(at least ``--num-transitions``). Every dataset records the same reference returns
(``ref_min_score``: the random policy, ``ref_max_score``: the expert policy, both
greedy means over ``--reference-episodes``), so their normalised scores compare.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmarl.agents.sac_n import SACN
from hmarl.core import ReplayBuffer, check_choice, option
from hmarl.data import QUALITIES, OfflineDataset, save_dataset
from hmarl.data.offline import REF_MAX_KEY, REF_MIN_KEY
from hmarl.trainers.sac_n import OnlineConfig, make_online_agent, train_online
from hmarl.training import (
    CHECKPOINT_PATTERN,
    BatchedEnv,
    EnvSpec,
    budget_of,
    evaluate,
    load_checkpoint,
    make_vector_env,
    parse_config,
    resolve_device,
    restore_agent,
    to_tensors,
)
from hmarl.training.loop import seed_everything

FORMATS = ("hdf5", "npz")
COLLECT_SEED_OFFSET = 7_919
REFERENCE_SEED_OFFSET = 104_729


@dataclass
class CollectConfig(OnlineConfig):
    """Train (or load) an online SAC-N policy and write random/medium/replay/expert datasets."""

    out_dir: str = option("datasets", "directory the datasets are written to, as <env>-<quality>.<format>")
    qualities: tuple[str, ...] = option(QUALITIES, "dataset qualities to write", choices=QUALITIES)
    num_transitions: int = option(50_000, "transitions per random/medium/expert dataset (whole episodes, at least)")
    medium_fraction: float = option(1 / 3, "where the medium policy's return lies between random (0) and expert (1)")
    snapshots: int = option(20, "policies saved along training to choose the medium one from")
    policy_run: str = option(
        "",
        "checkpoint directory of an earlier online SAC-N run to use instead of training (the replay dataset "
        "needs its checkpoints written with --checkpoint-replay)",
    )
    reference_episodes: int = option(50, "greedy episodes behind each reference return")
    collect_envs: int = option(10, "environment copies stepped together while collecting")
    format: str = option("hdf5", "file format of the datasets", choices=FORMATS)
    buffer_size: int = option(1_000_000, "replay capacity in transitions (the replay dataset is drawn from it)")


class UniformPolicy:
    """Actions drawn uniformly from the box, from a generator of its own."""

    def __init__(self, low: Sequence[float], high: Sequence[float], seed: int) -> None:
        self.low = torch.as_tensor(low, dtype=torch.float32)
        self.high = torch.as_tensor(high, dtype=torch.float32)
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def act_greedy(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        shape = (*obs["observation"].shape[:-1], len(self.low))
        return self.low + torch.rand(shape, generator=self.generator) * (self.high - self.low)


@dataclass
class Snapshot:
    path: Path
    env_steps: int
    greedy_return: float


def _validate(config: CollectConfig) -> None:
    for quality in config.qualities:
        check_choice("qualities", quality, QUALITIES)
    check_choice("format", config.format, FORMATS)
    for name in ("num_transitions", "snapshots", "reference_episodes", "collect_envs"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not 0.0 < config.medium_fraction < 1.0:
        raise ValueError(f"medium_fraction must be in (0, 1), got {config.medium_fraction}")


def _policy_checkpoints(config: CollectConfig) -> list[Path]:
    if config.policy_run:
        directory = Path(config.policy_run)
    else:
        updates = budget_of(config).total_updates
        # The replay dataset is read from the checkpoints, so they carry the replay.
        run = dataclasses.replace(
            config, checkpoint_every=max(updates // config.snapshots, 1), keep_checkpoints=0, checkpoint_replay=True
        )
        checkpoint = train_online(run).checkpoint
        if checkpoint is None:
            raise RuntimeError(f"the policy run {run.run_name!r} wrote no checkpoint to collect from")
        directory = checkpoint.parent
    paths = sorted(directory.glob(CHECKPOINT_PATTERN))
    if not paths:
        raise ValueError(f"policy_run={str(directory)!r} holds no {CHECKPOINT_PATTERN} checkpoints of a SAC-N run")
    return paths


def _load_agent(path: Path, spec: EnvSpec, device: torch.device) -> tuple[SACN, int]:
    """The agent saved at ``path`` (replay included) and the environment steps behind it."""
    checkpoint = load_checkpoint(path)
    names = {f.name for f in dataclasses.fields(OnlineConfig)}
    stored = OnlineConfig(**{name: value for name, value in checkpoint["config"].items() if name in names})
    # The replay's layout follows the run's environment copies, not the evaluation's.
    agent = make_online_agent(stored, dataclasses.replace(spec, num_envs=stored.num_envs), budget_of(stored), device)
    restore_agent(agent, checkpoint["agent"])
    return agent, int(checkpoint["loop"]["global_step"])


def rollout_dataset(
    act: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    env: BatchedEnv,
    num_transitions: int,
    seed: int,
    device: torch.device,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Whole episodes of ``act`` in ``env`` until they hold ``num_transitions``.

    Each copy's episodes are kept back to back; a copy's unfinished last episode is
    dropped, so every stored episode ends with a terminal or a timeout flag.
    """
    streams: list[dict[str, list[Any]]] = [
        {key: [] for key in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
        for _ in range(env.num_envs)
    ]
    finished_length = np.zeros(env.num_envs, dtype=np.int64)
    returns: list[float] = []
    obs, _ = env.reset(seed=seed)
    while finished_length.sum() < num_transitions:
        actions = act(to_tensors(obs, device)).cpu().numpy()
        next_obs, rewards, terminated, truncated, infos = env.step(actions)
        done = terminated | truncated
        next_observation = np.where(done[:, None], infos["final_observation"][:, 0], next_obs["observation"][:, 0])
        for index, stream in enumerate(streams):
            stream["observations"].append(obs["observation"][index, 0])
            stream["actions"].append(actions[index, 0])
            stream["rewards"].append(rewards[index, 0])
            stream["next_observations"].append(next_observation[index])
            stream["terminals"].append(terminated[index])
            stream["timeouts"].append(truncated[index] and not terminated[index])
        for finished in np.flatnonzero(done):
            finished_length[finished] = len(streams[finished]["rewards"])
            returns.append(float(infos["episode_return"][index].sum()))
        obs = next_obs
    arrays = {
        key: np.concatenate([np.asarray(stream[key][: finished_length[i]]) for i, stream in enumerate(streams)])
        for key in streams[0]
    }
    return arrays, np.asarray(returns)


def replay_dataset(replay: ReplayBuffer) -> dict[str, np.ndarray]:
    """The replay's transitions in the D4RL layout, oldest first, one stream after another.

    Where the replay stops, an episode is cut short: that last transition of every
    stream is flagged a timeout (it still bootstraps), as D4RL does.
    """
    oldest = (replay.next_row - replay.filled_rows) % replay.rows
    rows = (oldest + torch.arange(replay.filled_rows, device=replay.device)) % replay.rows
    index = (rows[:, None] * replay.num_streams + torch.arange(replay.num_streams, device=replay.device)).T.reshape(-1)
    stored = {name: tensor.index_select(0, index).cpu().numpy() for name, tensor in replay.storage.items()}
    timeouts = stored["truncated"] & ~stored["terminated"]
    last = np.arange(1, replay.num_streams + 1) * replay.filled_rows - 1
    timeouts[last] |= ~stored["terminated"][last]
    return {
        "observations": stored["observation"],
        "actions": stored["action"],
        "rewards": stored["reward"],
        "next_observations": stored["next_observation"],
        "terminals": stored["terminated"],
        "timeouts": timeouts,
    }


def collect(config: CollectConfig) -> dict[str, Path]:
    """Write the datasets ``config`` asks for; returns their paths by quality."""
    _validate(config)
    device = resolve_device(config.device)
    checkpoints = _policy_checkpoints(config)
    seed_everything(config.seed)
    eval_env = make_vector_env(config.env, config.reference_episodes, config.env_kwargs)
    collect_env = make_vector_env(config.env, config.collect_envs, config.env_kwargs)
    spec = EnvSpec.of(eval_env)
    reference_seed = config.seed + REFERENCE_SEED_OFFSET
    random_policy = UniformPolicy(spec.action_low, spec.action_high, config.seed)
    random_return = evaluate(random_policy, eval_env, reference_seed, device)["return"]

    snapshots = []
    for path in checkpoints:
        agent, env_steps = _load_agent(path, spec, device)
        snapshots.append(Snapshot(path, env_steps, evaluate(agent, eval_env, reference_seed, device)["return"]))
    expert = max(snapshots, key=lambda snapshot: snapshot.greedy_return)
    if not expert.greedy_return > random_return:
        raise ValueError(
            f"the best policy (return {expert.greedy_return:.1f}) is no better than random ({random_return:.1f}); "
            "train longer (--total-steps) before collecting"
        )
    medium_goal = random_return + config.medium_fraction * (expert.greedy_return - random_return)
    medium = min(snapshots, key=lambda snapshot: abs(snapshot.greedy_return - medium_goal))
    sources = {"random": None, "medium": medium, "replay": medium, "expert": expert}

    base_metadata: dict[str, Any] = {
        "env_id": config.env,
        "env_kwargs": json.dumps(config.env_kwargs),
        REF_MIN_KEY: random_return,
        REF_MAX_KEY: expert.greedy_return,
        "algorithm": "sac_n",
        "seed": config.seed,
    }
    out_dir = Path(config.out_dir)
    paths: dict[str, Path] = {}
    for quality in config.qualities:
        snapshot = sources[quality]
        metadata = {**base_metadata, "quality": quality}
        seed = config.seed + COLLECT_SEED_OFFSET * (QUALITIES.index(quality) + 1)
        if snapshot is None:
            metadata.update(policy_return=random_return, policy_env_steps=0)
            arrays, _ = rollout_dataset(random_policy.act_greedy, collect_env, config.num_transitions, seed, device)
        else:
            agent, _ = _load_agent(snapshot.path, spec, device)
            metadata.update(policy_return=snapshot.greedy_return, policy_env_steps=snapshot.env_steps)
            if quality == "replay":
                if agent.replay is None or not len(agent.replay):
                    raise ValueError(
                        f"checkpoint {str(snapshot.path)!r} holds no replay for the replay dataset; train the policy "
                        "run with --checkpoint-replay"
                    )
                arrays = replay_dataset(agent.replay)
            else:
                arrays, _ = rollout_dataset(agent.act_sampled, collect_env, config.num_transitions, seed, device)
        dataset = OfflineDataset(**arrays, metadata=metadata)
        episode_returns = dataset.episode_returns()
        dataset.metadata.update(
            num_episodes=int(episode_returns.size),
            mean_return=float(episode_returns.mean()) if episode_returns.size else math.nan,
        )
        path = save_dataset(out_dir / f"{config.env}-{quality}.{config.format}", dataset)
        paths[quality] = path
        print(
            f"dataset {path} quality={quality} transitions={len(dataset)} episodes={episode_returns.size} "
            f"mean_return={dataset.metadata['mean_return']:.1f} "
            f"normalized_score={dataset.normalized_score(dataset.metadata['mean_return']):.1f}",
            flush=True,
        )
    return paths


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    return collect(parse_config(CollectConfig, argv, __doc__))


if __name__ == "__main__":
    main()
