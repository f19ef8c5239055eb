"""The training loop every trainer shares.

A trainer provides its configuration and a function that builds its agent; the
loop steps the batched environments, feeds transitions to the agent, runs the update
rounds, evaluates greedily, logs, writes checkpoints that resume exactly, and prints
a one-line summary.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from hmarl.core import NonFiniteLossError
from hmarl.core.sparse import SparseConfig, SparseRun, attach_sparse, check_sparse
from hmarl.training.checkpoints import (
    CHECKPOINT_PATTERN,
    agent_checkpoint_state,
    remove_checkpoint,
    restore_agent,
    save_checkpoint_file,
)
from hmarl.training.config import CommonRunConfig, RunConfig, flat_options, given_options
from hmarl.training.envs import BatchedEnv, make_vector_env
from hmarl.training.guard import DivergenceError, DivergenceGuard
from hmarl.training.logger import RunLogger
from hmarl.training.runs import plan_resume
from hmarl.training.validation import check_fields, check_writable_dir, check_writable_file

Tensors = dict[str, torch.Tensor]
ConfigT = TypeVar("ConfigT", bound=RunConfig)
#: Any run configuration, online or offline.
CommonT = TypeVar("CommonT", bound=CommonRunConfig)
EVAL_SEED_OFFSET = 1_000_003
RECENT_EPISODES = 20
#: Called with the loop's state after each greedy evaluation (see :func:`evaluation_listener`).
_EVALUATION_LISTENERS: list[Callable[[LoopState], None]] = []


class GreedyPolicy(Protocol):
    """What evaluation needs: greedy actions (see :class:`Agent`)."""

    def act_greedy(self, obs: Tensors) -> torch.Tensor: ...


class Agent(Protocol):
    """What the loop needs from an algorithm.

    Observations are the batched face's arrays as tensors on the training device:
    ``observation`` (B, N, obs_dim), ``action_mask`` (B, N, n_actions) bool and
    ``state`` (B, state_dim). A transition adds ``action`` (B, N), ``reward`` (B, N),
    ``next_observation``, ``next_action_mask``, ``next_state`` (the final ones where an
    episode ended), ``terminated`` and ``truncated`` (B,) and ``invalid_action`` (B, N).
    An agent that also needs the environment itself (hierarchical agents read its
    options interface) defines ``attach_env(env, evaluation)``; see :func:`attach_env`.
    """

    def act(self, obs: Tensors, global_step: int) -> torch.Tensor:
        """Exploring actions (B, N) for training at ``global_step`` environment steps."""

    def act_greedy(self, obs: Tensors) -> torch.Tensor:
        """Greedy actions (B, N) for evaluation; must not draw random numbers."""

    def store(self, transition: Tensors) -> None: ...

    def can_update(self) -> bool: ...

    def update(self) -> Mapping[str, Any]:
        """One update; returns metrics to log."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class EnvSpec:
    """Sizes of the training environment, for building networks and replay.

    Continuous-action environments also give their action box (empty for discrete ones).
    """

    num_envs: int
    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    #: ``(channels, height, width)`` of the grid image an observation starts with, if any.
    obs_grid: tuple[int, ...] = ()

    @classmethod
    def of(cls, env: BatchedEnv) -> EnvSpec:
        """The spec of ``env``; only continuous-action environments have ``action_low``,
        only grid worlds have ``obs_grid``."""
        return cls(
            env.num_envs,
            env.n_agents,
            env.n_actions,
            env.obs_dim,
            env.state_dim,
            getattr(env, "action_low", ()),
            getattr(env, "action_high", ()),
            tuple(getattr(env, "observation_grid", None) or ()),
        )


@dataclass(frozen=True)
class Budget:
    """How long the run is: environment steps and the updates they lead to."""

    total_steps: int
    total_updates: int


AgentFactory = Callable[[Any, EnvSpec, Budget, torch.device], Agent]


@dataclass
class LoopState:
    """Everything the loop itself carries from one iteration to the next."""

    global_step: int = 0
    vector_steps: int = 0
    updates: int = 0
    episodes: int = 0
    recent_returns: list[float] = field(default_factory=list)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    steps_to_target: int | None = None
    seconds_to_target: float | None = None
    wall_seconds: float = 0.0


@dataclass
class TrainResult:
    run_name: str
    env_steps: int
    updates: int
    episodes: int
    wall_seconds: float
    train_return: float
    evaluations: list[tuple[int, dict[str, float]]]
    steps_to_target: int | None
    checkpoint: Path | None
    last_update: dict[str, float] = field(default_factory=dict)
    seconds_to_target: float | None = None
    backward_rows: int = 0
    scored_rows: int = 0
    #: Fields a method adds to the summary line (sparse training's FLOPs), in order.
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def final_eval(self) -> dict[str, float]:
        return self.evaluations[-1][1] if self.evaluations else {}

    def summary(self) -> str:
        final = self.final_eval
        best = max((metrics["return"] for _, metrics in self.evaluations), default=float("nan"))
        parts = [
            f"run={self.run_name}",
            f"env_steps={self.env_steps}",
            f"updates={self.updates}",
            f"episodes={self.episodes}",
            f"wall={self.wall_seconds:.1f}s",
            f"steps_per_s={self.env_steps / max(self.wall_seconds, 1e-9):.0f}",
            f"backward_rows={self.backward_rows}",
            f"train_return={self.train_return:.3f}",
            *(f"eval_{name}={value:.3f}" for name, value in final.items()),
            f"best_eval_return={best:.3f}",
            f"steps_to_target={self.steps_to_target if self.steps_to_target is not None else 'not reached'}",
            *(f"{name}={value}" for name, value in self.extra.items()),
        ]
        return "summary " + " ".join(parts)


@contextlib.contextmanager
def evaluation_listener(listener: Callable[[LoopState], None]) -> Iterator[None]:
    """While open, ``listener`` gets the loop's state after each greedy evaluation of any
    run in this process: ``state.evaluations`` is the learning curve so far (a resumed
    run's includes its parent's) and ``state.wall_seconds`` its training time. This is how
    a hyperparameter search reads a trainer's curve while it is drawn."""
    _EVALUATION_LISTENERS.append(listener)
    try:
        yield
    finally:
        _EVALUATION_LISTENERS.remove(listener)


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; anything else goes to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a torch device: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    return resolved


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_tensors(arrays: Mapping[str, np.ndarray], device: torch.device) -> Tensors:
    """The batched face's observation arrays as tensors; masks become bool."""
    tensors = {name: torch.as_tensor(value, device=device) for name, value in arrays.items()}
    tensors["action_mask"] = tensors["action_mask"].bool()
    return tensors


def _episode_stat_names(infos: Mapping[str, Any], num_envs: int) -> list[str]:
    """Per-copy episode statistics (``success``, ...) reported alongside the return."""
    return [
        name
        for name, value in infos.items()
        if name not in ("episode_length", "episode_return") and isinstance(value, np.ndarray) and value.shape == (num_envs,)
    ]


def make_transition(
    obs: Mapping[str, np.ndarray],
    actions: np.ndarray,
    rewards: np.ndarray,
    next_obs: Mapping[str, np.ndarray],
    terminated: np.ndarray,
    truncated: np.ndarray,
    infos: Mapping[str, np.ndarray],
    device: torch.device,
) -> Tensors:
    """One batched step as tensors, with the final observations where episodes ended."""
    return transition(
        to_tensors(obs, device),
        torch.as_tensor(actions, device=device),
        rewards,
        to_tensors(next_obs, device),
        terminated,
        truncated,
        infos,
        device,
    )


def transition(
    obs: Tensors,
    actions: torch.Tensor,
    rewards: np.ndarray,
    next_obs: Tensors,
    terminated: np.ndarray,
    truncated: np.ndarray,
    infos: Mapping[str, np.ndarray],
    device: torch.device,
) -> Tensors:
    """:func:`make_transition` from observations already on the device (:func:`to_tensors`):
    the loop moves each observation there once, and of the final observations only the
    rows of the copies whose episode ended."""
    done = terminated | truncated
    next_observation, next_state = next_obs["observation"], next_obs["state"]
    # The batched face does not report the mask of a final observation; nothing is
    # ruled out there (its value only matters after a truncation).
    next_action_mask = next_obs["action_mask"]
    if done.any():
        rows = torch.as_tensor(np.flatnonzero(done), device=device)
        next_observation, next_state = next_observation.clone(), next_state.clone()
        next_observation[rows] = torch.as_tensor(infos["final_observation"][done], device=device)
        next_state[rows] = torch.as_tensor(infos["final_state"][done], device=device)
        next_action_mask = next_action_mask.clone()
        next_action_mask[rows] = True
    return {
        "observation": obs["observation"],
        "action_mask": obs["action_mask"],
        "state": obs["state"],
        "action": actions,
        "reward": torch.as_tensor(rewards.astype(np.float32), device=device),
        "next_observation": next_observation,
        "next_action_mask": next_action_mask,
        "next_state": next_state,
        "terminated": torch.as_tensor(terminated, device=device),
        "truncated": torch.as_tensor(truncated, device=device),
        "invalid_action": torch.as_tensor(infos["invalid_action"], device=device),
    }


def attach_env(agent: GreedyPolicy, env: BatchedEnv, evaluation: bool) -> None:
    """Hand ``env`` to an agent that acts through the environment itself (hierarchical
    agents read its options interface): the training environment, or an evaluation
    environment just reset. Agents without an ``attach_env`` method need nothing."""
    attach = getattr(agent, "attach_env", None)
    if attach is not None:
        attach(env, evaluation=evaluation)


@torch.no_grad()
def evaluate(agent: GreedyPolicy, env: BatchedEnv, seed: int, device: torch.device) -> dict[str, float]:
    """Mean greedy return, length and episode statistics over one episode per copy."""
    return {name: float(values.mean()) for name, values in evaluate_episodes(agent, env, seed, device).items()}


@torch.no_grad()
def evaluate_episodes(agent: GreedyPolicy, env: BatchedEnv, seed: int, device: torch.device) -> dict[str, np.ndarray]:
    """Greedy return, length and episode statistics of one episode per copy, (num_envs,) each."""
    obs, _ = env.reset(seed=seed)
    attach_env(agent, env, evaluation=True)
    finished = np.zeros(env.num_envs, dtype=bool)
    results: dict[str, np.ndarray] = collections.defaultdict(lambda: np.zeros(env.num_envs))
    while not finished.all():
        actions = agent.act_greedy(to_tensors(obs, device))
        obs, _, terminated, truncated, infos = env.step(actions.cpu().numpy())
        ended = (terminated | truncated) & ~finished
        results["return"][ended] = infos["episode_return"][ended].sum(-1)
        results["length"][ended] = infos["episode_length"][ended]
        for name in _episode_stat_names(infos, env.num_envs):
            results[name][ended] = infos[name][ended]
        finished |= ended
    return dict(results)


def _validate(config: RunConfig) -> None:
    positive = ("num_envs", "total_steps", "train_every", "updates_per_round", "eval_episodes", "log_every")
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in ("learning_starts", "eval_every", "checkpoint_every", "keep_checkpoints", "seed"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)}")
    check_fields(config)


def check_paths(config: Any) -> None:
    """Every path the run will write to must be writable now, not after the budget is spent:
    the run's log and checkpoint directories, any other ``*_dir`` option, and a ``gif`` file."""
    check_writable_dir("checkpoint_dir", Path(config.checkpoint_dir) / config.run_name)
    check_writable_dir("log_dir", Path(config.log_dir) / config.run_name)
    for field_ in dataclasses.fields(config):
        value = getattr(config, field_.name)
        if field_.name.endswith("_dir") and field_.name not in ("checkpoint_dir", "log_dir") and value:
            check_writable_dir(field_.name, value)
        elif field_.name == "gif" and value:
            check_writable_file(field_.name, value)


def episode_metrics(env: BatchedEnv) -> list[str]:
    """The metrics an evaluation of ``env`` reports: return, length and its episode statistics."""
    core = getattr(env, "core", None)
    stats = core.episode_stats() if core is not None else {}
    return ["return", "length"] + [
        name for name, value in stats.items() if isinstance(value, np.ndarray) and value.shape == (env.num_envs,)
    ]


def _check_target_metric(config: ConfigT, env: BatchedEnv, given: bool) -> ConfigT:
    """``config`` if ``env`` reports its target metric. A metric given on the command line
    must be reported; a trainer's default that this env lacks gives way to ``return``."""
    metrics = episode_metrics(env)
    if config.target_metric in metrics:
        return config
    if given:
        raise ValueError(f"target_metric={config.target_metric!r} is not valid; env={config.env!r} reports {metrics}")
    _warn(f"env={config.env!r} does not report the default target_metric={config.target_metric!r}; using 'return'")
    return dataclasses.replace(config, target_metric="return")


def budget_of(config: RunConfig) -> Budget:
    vector_steps = math.ceil(config.total_steps / config.num_envs)
    learning_vector_steps = max(vector_steps - math.ceil(config.learning_starts / config.num_envs), 0)
    rounds = learning_vector_steps // config.train_every
    return Budget(config.total_steps, max(rounds * config.updates_per_round, 1))


class _Checkpointer:
    def __init__(self, directory: Path, keep: int) -> None:
        self.directory = directory
        self.keep = keep
        self.last: Path | None = None

    def save(self, payload: Mapping[str, Any], updates: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = save_checkpoint_file(payload, self.directory / f"update_{updates:09d}.pt")
        self.last = path
        if self.keep:
            for old in sorted(self.directory.glob(CHECKPOINT_PATTERN))[: -self.keep]:
                remove_checkpoint(old)
        return path


def resume_config(config: CommonT) -> tuple[CommonT, dict[str, Any] | None]:
    """The configuration to run and the checkpoint to continue from, if ``config.resume``
    names one (see :mod:`hmarl.training.runs`)."""
    if not config.resume:
        return config, None
    plan = plan_resume(config)
    return plan.config, plan.checkpoint


class RunInterrupted(SystemExit):
    """SIGTERM or SIGINT stopped the run after its current update; ``checkpoint`` holds it.
    The exit status is the shell's for the signal (128 + its number)."""

    def __init__(self, signum: int, checkpoint: Path) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.checkpoint = checkpoint

    @classmethod
    def after(cls, signum: int, checkpoint: Path, updates: int, progress: Any, where: str = "") -> RunInterrupted:
        """Says where the run stopped and its checkpoint, in one line, and returns the exception to raise."""
        progress.close()
        print(
            f"{signal.Signals(signum).name}: stopped after update {updates}{where}; checkpoint: {checkpoint}",
            file=sys.stderr,
            flush=True,
        )
        return cls(signum, checkpoint)


@contextlib.contextmanager
def stop_requests() -> Iterator[list[int]]:
    """While open, SIGTERM and SIGINT are noted in the yielded list instead of ending the
    process; a second one ends it at once."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
        received.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def restore_env(env: BatchedEnv, saved: Any) -> None:
    """Continue ``env`` from a checkpoint's ``env`` entry, the plain data of its ``get_state()``."""
    if isinstance(saved, bytes):
        raise ValueError(
            "the checkpoint holds a pickled environment object (written before environments had an "
            "explicit state), which this version does not load; start a new run"
        )
    env.set_state(saved)


def _warn(message: str) -> None:
    tqdm.write(f"warning: {message}", file=sys.stderr)


def write_run_record(directory: Path, algorithm: str, config: Any, parent: Mapping[str, Any] | None) -> None:
    """``run.json`` in the run's checkpoint directory: what trained it and where it came from."""
    record = {"algorithm": algorithm, "config": dataclasses.asdict(config), "parent": parent}
    (directory / "run.json").write_text(json.dumps(record, indent=2, default=repr) + "\n")


def with_run_name(config: CommonT, algorithm: str, subject: str) -> CommonT:
    """``config`` with a run name: its own, or one made of the algorithm, subject, seed and time."""
    if config.run_name:
        return config
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return dataclasses.replace(config, run_name=f"{algorithm}_{subject}_seed{config.seed}_{stamp}")


def row_counts(agent: Any) -> dict[str, int]:
    """Rows that went through a backward pass and rows scored without gradients (a
    selection stage's candidates), summed over the agent's update engines."""
    engines = list(agent.engines().values()) if hasattr(agent, "engines") else []
    return {
        "backward_rows": sum(engine.backward_rows for engine in engines),
        "scored_rows": sum(engine.scored_rows for engine in engines),
    }


def update_or_stop(agent: Any, save_checkpoint: Callable[[], Path]) -> Mapping[str, Any]:
    """One update; a non-finite loss stops the run with a checkpoint to inspect or resume."""
    with _stop_on_non_finite(save_checkpoint):
        return agent.update()


def check_or_stop(agent: Any, save_checkpoint: Callable[[], Path]) -> None:
    """Read the finiteness checks that compiled engines keep on the device (the only host
    read of an update's health there); a non-finite update since the last read stops the
    run with a checkpoint, as an eager one does at once."""
    engines = agent.engines().values() if hasattr(agent, "engines") else ()
    with _stop_on_non_finite(save_checkpoint):
        for engine in engines:
            engine.check_finite()


@contextlib.contextmanager
def _stop_on_non_finite(save_checkpoint: Callable[[], Path]) -> Iterator[None]:
    try:
        yield
    except NonFiniteLossError as error:
        path = save_checkpoint()
        raise NonFiniteLossError(f"{error}; the run stopped, checkpoint: {path}") from error


def _build_agent(
    config: ConfigT, make_agent: AgentFactory, spec: EnvSpec, budget: Budget, device: torch.device
) -> tuple[Agent, SparseRun | None]:
    """The run's agent, with sparse training's hooks where the config asks for them."""
    if isinstance(config, SparseConfig):
        check_sparse(config, budget.total_updates)
    agent = make_agent(config, spec, budget, device)
    # Sparse training's hooks go on before a checkpoint is restored: their state is in it.
    sparse = attach_sparse(agent, config, budget.total_steps) if isinstance(config, SparseConfig) else None
    return agent, sparse


def _restore_run(checkpoint: Mapping[str, Any], agent: Agent, env: BatchedEnv) -> tuple[Any, LoopState]:
    """Put the agent, the environment and the random streams back as ``checkpoint`` saved
    them; returns the saved observation and loop state."""
    if not restore_agent(agent, checkpoint["agent"]):
        _warn(
            "the checkpoint holds no replay (it was written without --checkpoint-replay): the replay refills "
            "from the environment, so training goes on from the saved networks but not bit-identically"
        )
    restore_env(env, checkpoint["env"])
    _set_rng_state(checkpoint["rng"])
    return checkpoint["obs"], LoopState(**checkpoint["loop"])


def _evaluate_if_due(
    config: ConfigT,
    agent: Agent,
    eval_env: BatchedEnv | None,
    state: LoopState,
    logger: RunLogger,
    device: torch.device,
    started: float,
) -> bool:
    """Evaluate when this step crosses an evaluation point or ends the run; returns whether
    the run stops there (``--stop-at-target`` and the target reached)."""
    if eval_env is None or not (
        (state.global_step - config.num_envs) // config.eval_every != state.global_step // config.eval_every
        or state.global_step >= config.total_steps
    ):
        return False
    _evaluate_and_record(config, agent, eval_env, state, logger, device)
    state.wall_seconds = time.perf_counter() - started
    for listener in list(_EVALUATION_LISTENERS):
        listener(state)
    if state.steps_to_target == state.global_step and state.seconds_to_target is None:
        state.seconds_to_target = time.perf_counter() - started
    return state.steps_to_target is not None and config.stop_at_target


def train(config: ConfigT, make_agent: AgentFactory, algorithm: str) -> TrainResult:
    """Train the agent that ``make_agent`` builds, as ``config`` says; see :class:`RunConfig`.

    Everything is checked before the first step: options, paths (writable), the target
    metric against the environment, and (in ``make_agent``) the algorithm against the
    environment's action space. SIGTERM and SIGINT end the run after the current update
    with a checkpoint (:class:`RunInterrupted`).
    """
    checkpoint, parent = None, None
    metric_given = "target_metric" in given_options(config)
    if config.resume:
        plan = plan_resume(config)
        config, checkpoint, parent = plan.config, plan.checkpoint, plan.parent
    _validate(config)
    config = with_run_name(config, algorithm, config.env)
    check_paths(config)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    env = make_vector_env(config.env, config.num_envs, config.env_kwargs)
    config = _check_target_metric(config, env, metric_given)
    eval_env = make_vector_env(config.env, config.eval_episodes, config.env_kwargs) if config.eval_every else None
    spec = EnvSpec.of(env)
    budget = budget_of(config)
    agent, sparse = _build_agent(config, make_agent, spec, budget, device)
    state = LoopState()
    obs, _ = env.reset(seed=config.seed)
    if checkpoint is not None:
        obs, state = _restore_run(checkpoint, agent, env)
        parent = parent or checkpoint.get("parent")
    attach_env(agent, env, evaluation=False)

    checkpointer = _Checkpointer(Path(config.checkpoint_dir) / config.run_name, config.keep_checkpoints)
    write_run_record(checkpointer.directory, algorithm, config, parent)

    def save_checkpoint() -> Path:
        payload = {
            "algorithm": algorithm,
            "config": dataclasses.asdict(config),
            "parent": parent,
            "loop": dataclasses.asdict(state),
            "agent": agent_checkpoint_state(agent, config.checkpoint_replay),
            "env": env.get_state(),
            "obs": obs,
            "rng": _rng_state(),
        }
        return checkpointer.save(payload, state.updates)

    options = flat_options(config)
    gammas = [options[name] for name in ("gamma", "low_gamma") if name in options]
    guard = DivergenceGuard(max(gammas, default=0.99))
    checkpoint_seconds = config.checkpoint_minutes * 60.0
    logger = RunLogger(config.log_dir, config.run_name)
    progress = tqdm(
        total=config.total_steps,
        initial=state.global_step,
        unit="step",
        dynamic_ncols=True,
        disable=not config.progress,
        desc=config.run_name,
    )
    started = time.perf_counter() - state.wall_seconds
    last_saved = time.monotonic()
    metrics: Mapping[str, Any] = {}
    # Each observation goes to the device once: it is acted on, then stored with its successor.
    obs_tensors = to_tensors(obs, device)
    try:
        with stop_requests() as stop:
            while state.global_step < config.total_steps:
                actions = agent.act(obs_tensors, state.global_step)
                next_obs, rewards, terminated, truncated, infos = env.step(actions.cpu().numpy())
                next_tensors = to_tensors(next_obs, device)
                agent.store(
                    transition(obs_tensors, actions.to(device), rewards, next_tensors, terminated, truncated, infos, device)
                )
                guard.observe_rewards(rewards)
                obs, obs_tensors = next_obs, next_tensors
                state.global_step += config.num_envs
                state.vector_steps += 1
                _record_episodes(state, terminated | truncated, infos, logger, env.num_envs)

                learning = state.global_step >= config.learning_starts and state.vector_steps % config.train_every == 0
                checkpoint_due = False
                if learning and agent.can_update():
                    for _ in range(config.updates_per_round):
                        metrics = update_or_stop(agent, save_checkpoint)
                        state.updates += 1
                        if state.updates % config.log_every == 0:
                            check_or_stop(agent, save_checkpoint)
                            progress_rows = {**row_counts(agent), "wall_seconds": time.perf_counter() - started}
                            logger.scalars("train", {**metrics, **progress_rows}, state.global_step)
                            if sparse is not None:
                                logger.scalars("sparse", sparse.metrics(), state.global_step)
                            _guard(guard, metrics, state, config, save_checkpoint)
                        checkpoint_due |= bool(config.checkpoint_every) and state.updates % config.checkpoint_every == 0

                if _evaluate_if_due(config, agent, eval_env, state, logger, device, started):
                    break  # --stop-at-target, and the target was reached
                state.wall_seconds = time.perf_counter() - started
                if stop:
                    where = f" (step {state.global_step})"
                    raise RunInterrupted.after(stop[0], save_checkpoint(), state.updates, progress, where)
                checkpoint_due |= 0 < checkpoint_seconds <= time.monotonic() - last_saved
                if checkpoint_due:
                    save_checkpoint()
                    last_saved = time.monotonic()
                progress.update(config.num_envs)
                if state.vector_steps % 50 == 0:
                    progress.set_postfix(_postfix(state, metrics), refresh=False)
            state.wall_seconds = time.perf_counter() - started
            check_or_stop(agent, save_checkpoint)
            final_checkpoint = save_checkpoint()
    except (ValueError, TypeError) as error:
        # Not refused input: the command line shows these with their traceback.
        error.during_training = True  # type: ignore[union-attr]  # a marker the command line reads
        raise
    finally:
        progress.close()
        logger.close()
    result = TrainResult(
        run_name=config.run_name,
        env_steps=state.global_step,
        updates=state.updates,
        episodes=state.episodes,
        wall_seconds=state.wall_seconds,
        train_return=float(np.mean(state.recent_returns)) if state.recent_returns else float("nan"),
        evaluations=state.evaluations,
        steps_to_target=state.steps_to_target,
        checkpoint=final_checkpoint,
        last_update={name: float(value) for name, value in metrics.items()},
        seconds_to_target=state.seconds_to_target,
        **row_counts(agent),
        extra=sparse.summary_fields() if sparse is not None else {},
    )
    print(result.summary(), flush=True)
    return result


def _guard(
    guard: DivergenceGuard,
    metrics: Mapping[str, Any],
    state: LoopState,
    config: RunConfig,
    save_checkpoint: Callable[[], Path],
) -> None:
    message = guard.check(metrics, state.updates)
    if message is None:
        return
    if config.stop_on_divergence:
        path = save_checkpoint()
        raise DivergenceError(f"{message}; the run stopped (--stop-on-divergence), checkpoint: {path}")
    _warn(f"{message} (--stop-on-divergence stops the run here)")


def _record_episodes(
    state: LoopState, done: np.ndarray, infos: Mapping[str, np.ndarray], logger: RunLogger, num_envs: int
) -> None:
    if not done.any():
        return
    returns = infos["episode_return"][done].sum(-1)
    state.episodes += int(done.sum())
    state.recent_returns = (state.recent_returns + returns.tolist())[-RECENT_EPISODES:]
    values = {"return": returns.mean(), "length": infos["episode_length"][done].mean()}
    values.update({name: infos[name][done].mean() for name in _episode_stat_names(infos, num_envs)})
    logger.scalars("episode", values, state.global_step)


def _evaluate_and_record(
    config: RunConfig, agent: Agent, eval_env: BatchedEnv, state: LoopState, logger: RunLogger, device: torch.device
) -> None:
    results = evaluate(agent, eval_env, config.seed + EVAL_SEED_OFFSET, device)
    state.evaluations.append((state.global_step, results))
    logger.scalars("eval", results, state.global_step)
    reached = config.target_metric in results and results[config.target_metric] >= config.target_value
    # A nan limit compares False both ways: only a set limit can rule an evaluation out.
    reached = reached and not results.get("length", math.nan) > config.target_max_length
    if reached and state.steps_to_target is None:
        state.steps_to_target = state.global_step


def _postfix(state: LoopState, metrics: Mapping[str, Any]) -> dict[str, str]:
    postfix = {"updates": str(state.updates)}
    if state.recent_returns:
        postfix["return"] = f"{np.mean(state.recent_returns):.2f}"
    if state.evaluations:
        postfix["eval"] = f"{state.evaluations[-1][1]['return']:.2f}"
    if "loss" in metrics:
        postfix["loss"] = f"{float(metrics['loss']):.4f}"
    return postfix
