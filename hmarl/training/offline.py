"""The offline training loop: updates from a fixed dataset, evaluation in its environment.

The counterpart of :func:`hmarl.training.train` for agents that learn from a
D4RL-layout dataset instead of from their own experience. It shares that loop's
pieces (device choice, seeding, greedy evaluation, TensorBoard logging, checkpoints
that resume exactly, the summary line); what differs is the clock: it counts
gradient updates, and reports each evaluation's normalised score and training time
(evaluation excluded) so that runs can be compared by wall clock.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from tqdm import tqdm

from hmarl.core import option
from hmarl.core.sparse import SparseConfig, SparseRun, attach_sparse, check_sparse, sparse_active
from hmarl.data import OfflineDataset, load_dataset, normalized_score
from hmarl.data.offline import REF_MAX_KEY, REF_MIN_KEY
from hmarl.training.checkpoints import agent_checkpoint_state, restore_agent
from hmarl.training.config import CommonRunConfig
from hmarl.training.envs import BatchedEnv, make_vector_env
from hmarl.training.logger import RunLogger
from hmarl.training.validation import check_fields
from hmarl.training.loop import (
    EVAL_SEED_OFFSET,
    EnvSpec,
    RunInterrupted,
    _Checkpointer,
    _rng_state,
    _set_rng_state,
    check_or_stop,
    check_paths,
    evaluate,
    resolve_device,
    resume_config,
    seed_everything,
    stop_requests,
    update_or_stop,
    with_run_name,
)

ConfigT = TypeVar("ConfigT", bound="OfflineRunConfig")


class OfflineAgent(Protocol):
    """What the offline loop needs from an algorithm (see :class:`hmarl.training.Agent`)."""

    def act_greedy(self, obs: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def update(self) -> Mapping[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


OfflineAgentFactory = Callable[[Any, OfflineDataset, EnvSpec, torch.device], OfflineAgent]


@dataclass
class OfflineRunConfig(CommonRunConfig):
    """What every offline trainer's loop needs: dataset, budget and evaluation, besides the
    common options."""

    dataset: str = option("", "D4RL-layout dataset file to learn from (.hdf5, .h5 or .npz)")
    env: str = option("", "gymnasium id to evaluate in (default: the dataset's env_id metadata)")
    env_kwargs: dict = option({}, "keyword arguments of the environment as JSON (default: the dataset's)")
    total_updates: int = option(20_000, "gradient updates to train for")
    eval_every: int = option(2_000, "updates between greedy evaluations (0: only the final one)")
    eval_episodes: int = option(10, "episodes per greedy evaluation")
    target_value: float = option(
        float("nan"), "report the first update and training time at which the normalised score reaches this"
    )
    max_train_seconds: float = option(0.0, "stop once the updates have taken this long, evaluation excluded (0: no limit)")


@dataclass
class OfflineLoopState:
    updates: int = 0
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    updates_to_target: int | None = None
    seconds_to_target: float | None = None
    train_seconds: float = 0.0
    wall_seconds: float = 0.0


@dataclass
class OfflineResult:
    run_name: str
    updates: int
    wall_seconds: float
    train_seconds: float
    dataset_return: float
    evaluations: list[tuple[int, dict[str, float]]]
    updates_to_target: int | None
    seconds_to_target: float | None
    checkpoint: Path | None
    #: Fields a method adds to the summary line (sparse training's FLOPs), in order.
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def final_eval(self) -> dict[str, float]:
        return self.evaluations[-1][1] if self.evaluations else {}

    def summary(self) -> str:
        best = max((metrics["return"] for _, metrics in self.evaluations), default=float("nan"))
        parts = [
            f"run={self.run_name}",
            f"updates={self.updates}",
            f"wall={self.wall_seconds:.1f}s",
            f"train={self.train_seconds:.1f}s",
            f"updates_per_s={self.updates / max(self.train_seconds, 1e-9):.1f}",
            f"dataset_return={self.dataset_return:.3f}",
            *(f"eval_{name}={value:.3f}" for name, value in self.final_eval.items()),
            f"best_eval_return={best:.3f}",
            f"updates_to_target={self.updates_to_target if self.updates_to_target is not None else 'not reached'}",
            *(f"{name}={value}" for name, value in self.extra.items()),
        ]
        return "summary " + " ".join(parts)


def _validate(config: OfflineRunConfig) -> None:
    if not config.dataset:
        raise ValueError("dataset is required: a D4RL-layout .hdf5, .h5 or .npz file")
    for name in ("total_updates", "eval_episodes", "log_every"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in ("eval_every", "checkpoint_every", "keep_checkpoints", "seed", "max_train_seconds"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)}")
    check_fields(config)


def _evaluation_env(config: OfflineRunConfig, dataset: OfflineDataset) -> tuple[str, dict[str, Any]]:
    env = config.env or str(dataset.metadata.get("env_id", ""))
    if not env:
        raise ValueError(f"env is required: the dataset {config.dataset!r} names no env_id in its metadata to evaluate in")
    env_kwargs = config.env_kwargs or json.loads(str(dataset.metadata.get("env_kwargs", "{}")))
    return env, env_kwargs


def train_offline(config: ConfigT, make_agent: OfflineAgentFactory, algorithm: str) -> OfflineResult:
    """Train the agent ``make_agent`` builds on ``config.dataset``; see :class:`OfflineRunConfig`."""
    config, checkpoint = resume_config(config)
    _validate(config)
    dataset = load_dataset(config.dataset)
    env_id, env_kwargs = _evaluation_env(config, dataset)
    config = with_run_name(config, algorithm, Path(config.dataset).stem)
    check_paths(config)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    eval_env = make_vector_env(env_id, config.eval_episodes, env_kwargs)
    agent, sparse = _build_agent(config, make_agent, dataset, eval_env, device)
    has_references = REF_MIN_KEY in dataset.metadata and REF_MAX_KEY in dataset.metadata
    dataset_returns = dataset.episode_returns()
    dataset_return = float(dataset_returns.mean()) if dataset_returns.size else float("nan")
    state = OfflineLoopState()
    if checkpoint is not None:
        restore_agent(agent, checkpoint["agent"])
        state = OfflineLoopState(**checkpoint["loop"])
        _set_rng_state(checkpoint["rng"])

    checkpointer = _Checkpointer(Path(config.checkpoint_dir) / config.run_name, config.keep_checkpoints)

    def save_checkpoint() -> Path:
        payload = {
            "config": dataclasses.asdict(config),
            "loop": dataclasses.asdict(state),
            "algorithm": algorithm,
            # An offline agent's replay entry is its sampling position alone (the dataset is
            # reloaded from its file), so it always travels: offline resume stays exact.
            "agent": agent_checkpoint_state(agent, include_replay=True),
            "rng": _rng_state(),
        }
        return checkpointer.save(payload, state.updates)

    def evaluate_and_record() -> None:
        results = evaluate(agent, eval_env, config.seed + EVAL_SEED_OFFSET, device)
        if has_references:
            results["normalized_score"] = float(normalized_score(results["return"], dataset.metadata))
        results["train_seconds"] = state.train_seconds
        state.evaluations.append((state.updates, results))
        logger.scalars("eval", results, state.updates)
        score = results.get("normalized_score", float("nan"))
        if state.updates_to_target is None and score >= config.target_value:
            state.updates_to_target = state.updates
            state.seconds_to_target = state.train_seconds

    logger = RunLogger(config.log_dir, config.run_name)
    progress = tqdm(
        total=config.total_updates,
        initial=state.updates,
        unit="update",
        dynamic_ncols=True,
        disable=not config.progress,
        desc=config.run_name,
    )
    started = time.perf_counter() - state.wall_seconds
    last_saved = time.monotonic()
    metrics: Mapping[str, Any] = {}
    try:
        with stop_requests() as stop:
            while state.updates < config.total_updates:
                update_started = time.perf_counter()
                metrics = update_or_stop(agent, save_checkpoint)
                state.updates += 1
                if state.updates % config.log_every == 0:
                    check_or_stop(agent, save_checkpoint)
                    logger.scalars("train", metrics, state.updates)
                    if sparse is not None:
                        logger.scalars("sparse", sparse.metrics(), state.updates)
                if device.type == "cuda":
                    # Kernels run asynchronously; time the updates, not their launches.
                    torch.cuda.synchronize(device)
                state.train_seconds += time.perf_counter() - update_started
                out_of_time = 0 < config.max_train_seconds <= state.train_seconds
                finished = state.updates >= config.total_updates or out_of_time
                if finished or (config.eval_every and state.updates % config.eval_every == 0):
                    evaluate_and_record()
                    progress.set_postfix(_postfix(state), refresh=False)
                    if finished or (config.stop_at_target and state.updates_to_target is not None):
                        break
                state.wall_seconds = time.perf_counter() - started
                if stop:
                    raise RunInterrupted.after(stop[0], save_checkpoint(), state.updates, progress)
                by_clock = 0 < config.checkpoint_minutes * 60.0 <= time.monotonic() - last_saved
                by_updates = bool(config.checkpoint_every) and state.updates % config.checkpoint_every == 0
                if (by_updates or by_clock) and not finished:
                    save_checkpoint()
                    last_saved = time.monotonic()
                progress.update(1)
            state.wall_seconds = time.perf_counter() - started
            check_or_stop(agent, save_checkpoint)
            final_checkpoint = save_checkpoint()
    finally:
        progress.close()
        logger.close()
    result = OfflineResult(
        run_name=config.run_name,
        updates=state.updates,
        wall_seconds=state.wall_seconds,
        train_seconds=state.train_seconds,
        dataset_return=dataset_return,
        evaluations=state.evaluations,
        updates_to_target=state.updates_to_target,
        extra=sparse.summary_fields() if sparse is not None else {},
        seconds_to_target=state.seconds_to_target,
        checkpoint=final_checkpoint,
    )
    print(result.summary(), flush=True)
    return result


def _build_agent(
    config: ConfigT,
    make_agent: OfflineAgentFactory,
    dataset: OfflineDataset,
    eval_env: BatchedEnv,
    device: torch.device,
) -> tuple[OfflineAgent, SparseRun | None]:
    """The run's agent, with sparse training attached where the config asks for it."""
    if isinstance(config, SparseConfig):
        check_sparse(config, config.total_updates)
    agent = make_agent(config, dataset, EnvSpec.of(eval_env), device)
    # Offline, the replay is the dataset: sparse training's masks and topology act, the
    # replay options (n-step switch, dynamic buffer) do not.
    sparse = None
    if isinstance(config, SparseConfig) and sparse_active(config):
        sparse = attach_sparse(agent, dataclasses.replace(config, delayed_nstep=1, dynamic_buffer=False), len(dataset))
    return agent, sparse


def _postfix(state: OfflineLoopState) -> dict[str, str]:
    latest = state.evaluations[-1][1]
    postfix = {"eval": f"{latest['return']:.2f}"}
    if "normalized_score" in latest:
        postfix["score"] = f"{latest['normalized_score']:.1f}"
    return postfix
