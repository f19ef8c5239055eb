"""One batched simulation core per environment, and the faces over it.

Every hmarl environment implements its rules once, as a :class:`BatchedCore` whose
state arrays are shaped ``(num_envs, ...)`` and stepped for all copies with array
operations. Three faces sit over that core:

* :class:`VectorEnv` - the batched face trainers use, with auto-reset;
* :class:`PettingZooParallelEnv` - PettingZoo's ``ParallelEnv`` over a core of one copy;
* the AEC face, PettingZoo's own ``parallel_to_aec`` conversion of the parallel face.

Because the rules exist once, the faces cannot drift apart; a test checks that they
produce identical trajectories for the same seed and actions.

Everything a copy's episode depends on lives in one :class:`CoreState`, a dataclass of
arrays with a copies axis, so resetting (fresh copies put where episodes ended),
copying and checkpointing are generic.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

if TYPE_CHECKING:
    from typing_extensions import Self

RENDER_MODES = ("human", "rgb_array")
#: The longest episode any environment accepts, in steps: far beyond every task, and
#: small enough that step counters and the state's time left stay exact.
MAX_CYCLES = 1_000_000


def check_choice(name: str, value: Any, valid: Sequence[Any]) -> None:
    """Raise a ValueError naming ``name`` when ``value`` is not one of ``valid``."""
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(valid)}")


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]`` or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value} is out of range; it must be {bound}")
    return int(value)


def check_actions(actions: Any, shape: tuple[int, ...], n_actions: int) -> np.ndarray:
    """Validate an integer action array of ``shape`` with values in ``[0, n_actions)``."""
    array = np.asarray(actions)
    if array.shape != shape:
        raise ValueError(f"actions must have shape {shape}, got {array.shape}")
    if array.dtype.kind not in "iu":
        if array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0):
            array = array.astype(np.int64)
        else:
            raise TypeError(f"actions must be integers, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= n_actions):
        bad = array[(array < 0) | (array >= n_actions)].ravel()[0]
        raise ValueError(f"action {bad} is outside the action space; valid actions are 0..{n_actions - 1}")
    return array.astype(np.int64, copy=False)


_FAST_INTS = (int, np.int64)


def copies_axis(axis: int) -> Any:
    """A :class:`CoreState` field whose copies axis is ``axis`` (0 unless declared)."""
    return dataclasses.field(metadata={"copies_axis": axis})


@dataclasses.dataclass
class CoreState:
    """The state of ``num_envs`` copies: one array per field, each with a copies axis.

    A core subclasses this with its own fields (``copies_axis(-1)`` for arrays that keep
    the copies last). A field may be ``None`` where a configuration keeps it fixed.
    Operations work in place on the existing arrays, so views of them stay valid.
    """

    t: np.ndarray

    def fields(self) -> dict[str, np.ndarray]:
        """The arrays by name, leaving out ``None`` fields."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def axis_of(cls, name: str) -> int:
        return _AXES[cls][name]

    def _index(self, name: str, idx: np.ndarray | slice) -> tuple[Any, ...]:
        return (idx,) if _AXES[type(self)][name] == 0 else (Ellipsis, idx)

    def take(self, idx: np.ndarray | slice) -> Self:
        """A new state of the copies ``idx`` (copied arrays)."""
        parts: dict[str, Any] = {f.name: None for f in dataclasses.fields(self)}
        parts.update({name: value[self._index(name, idx)] for name, value in self.fields().items()})
        return type(self)(**parts)

    def put(self, idx: np.ndarray | slice, part: CoreState) -> None:
        """Overwrite copies ``idx`` with ``part`` (a state of ``len(idx)`` copies, or of
        one copy, broadcast to all of them)."""
        for name, value in self.fields().items():
            value[self._index(name, idx)] = getattr(part, name)

    def where(self, done: np.ndarray, fresh: CoreState) -> None:
        """``where(done, fresh, self)`` in place: the copies that are ``done`` take
        ``fresh``'s arrays (a state of every copy, or of one copy for all)."""
        idx = np.flatnonzero(done)
        if idx.size:
            single = fresh.t.shape[0] == 1 and done.shape[0] != 1
            self.put(idx, fresh if single else fresh.take(idx))

    def copy(self) -> Self:
        return dataclasses.replace(self, **{name: value.copy() for name, value in self.fields().items()})

    def load(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Overwrite every array from ``arrays`` (as :meth:`fields` gives them), checking
        names, shapes and dtypes first."""
        own = self.fields()
        if set(arrays) != set(own):
            raise ValueError(f"state must hold the fields {sorted(own)}, got {sorted(arrays)}")
        for name, value in own.items():
            given = np.asarray(arrays[name])
            if given.shape != value.shape or given.dtype != value.dtype:
                raise ValueError(
                    f"state field {name!r} must be {value.dtype} of shape {value.shape}, "
                    f"got {given.dtype} of shape {given.shape}"
                )
        for name, value in own.items():
            value[...] = arrays[name]


_AXES: dict[type, dict[str, int]] = {}


def _register_state_type(state_type: type[CoreState]) -> None:
    if state_type not in _AXES:
        _AXES[state_type] = {f.name: f.metadata.get("copies_axis", 0) for f in dataclasses.fields(state_type)}


def _state_property(name: str) -> property:
    def get(self: BatchedCore) -> Any:
        return getattr(self.state, name)

    def set(self: BatchedCore, value: Any) -> None:
        setattr(self.state, name, value)

    return property(get, set, doc=f"``state.{name}``")


class BatchedCore(abc.ABC):
    """The rules of one environment for ``num_envs`` independent copies.

    A subclass sets the class attributes and, in ``__init__``, the sizes
    ``n_agents``, ``n_actions``, ``obs_dim``, ``state_dim``, ``goal_dim``,
    ``goal_names`` and ``max_cycles``; it allocates its state arrays with a leading
    ``num_envs`` axis and implements the abstract methods below. Methods that take
    ``idx`` accept an integer index array of copies or ``slice(None)`` for all of them.
    Randomness comes only from ``self.rng``, so one seed fixes a whole run.

    Every array that changes within or between episodes is a field of ``self.state``, an
    instance of the class attribute ``state_type``; each field is also readable and
    settable as an attribute of the core (``core.t`` is ``core.state.t``). Episodes
    start from :meth:`fresh_state`; :meth:`get_state` and :meth:`set_state` checkpoint.
    """

    state_type: ClassVar[type[CoreState]] = CoreState

    name: str = ""
    agent_prefix: str = "agent"
    render_fps: int = 10
    #: Episode statistics reported in infos at episode end, e.g. ``("success",)``.
    episode_stat_names: tuple[str, ...] = ()
    #: ``(channels, height, width)`` when an observation starts with a channel-major
    #: image of the grid (its other entries follow, flat); ``None`` otherwise.
    observation_grid: tuple[int, int, int] | None = None
    #: ``(channels, height, width)`` when a goal encoding starts with channel-major maps
    #: of the same grid (a goal's cell); ``None`` otherwise. With both grids, channel 0
    #: of an observation marks the observing agent's own cell (egocentric views centre
    #: on it).
    goal_grid: tuple[int, int, int] | None = None

    #: The copies' state, an instance of ``state_type``; each field is also an attribute.
    state: CoreState
    t: np.ndarray

    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int
    goal_dim: int
    goal_names: list[str]
    max_cycles: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register_state_type(cls.state_type)
        for f in dataclasses.fields(cls.state_type):
            if f.name not in cls.__dict__:
                setattr(cls, f.name, _state_property(f.name))

    def __init__(self, num_envs: int = 1) -> None:
        self.num_envs = check_int("num_envs", num_envs, 1)
        self.rng = np.random.default_rng()

    def seed(self, seed: int | None) -> None:
        """Restart the random stream; ``None`` draws fresh entropy."""
        if seed is not None:
            check_int("seed", seed, 0)
        self.rng = np.random.default_rng(seed)

    def reset_copies(self, idx: np.ndarray | slice) -> None:
        """Start a new episode in the copies ``idx``: ``where(done, fresh, state)``."""
        count = len(np.arange(self.num_envs)[idx])
        self.state.put(idx, self.fresh_state(count))
        self._state_changed()

    def get_state(self) -> dict[str, Any]:
        """A copy of everything that determines what follows: the state's arrays and the
        random stream's position. Plain arrays and dicts, for checkpoints."""
        return {
            "state": {name: value.copy() for name, value in self.state.fields().items()},
            "rng": self.rng.bit_generator.state,
        }

    def set_state(self, saved: Mapping[str, Any]) -> None:
        """Continue from ``saved``, a :meth:`get_state` of a core built alike."""
        if not isinstance(saved, Mapping) or set(saved) != {"state", "rng"}:
            raise ValueError("state must be a get_state() result: a dict with 'state' and 'rng'")
        self.state.load(saved["state"])
        rng = np.random.default_rng()
        rng.bit_generator.state = saved["rng"]
        self.rng = rng
        self._state_changed()

    def _state_changed(self) -> None:  # noqa: B027 - an optional hook; a core without caches keeps this no-op
        """Drop whatever a core caches from its state (called after any outside change)."""

    # --- rules -------------------------------------------------------------------
    @abc.abstractmethod
    def fresh_state(self, count: int) -> CoreState:
        """Initial states of ``count`` new episodes (``t`` zero), drawn from ``self.rng``;
        a state of one copy stands for all ``count`` when they start alike."""

    @abc.abstractmethod
    def step_rules(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply validated ``(num_envs, n_agents)`` actions to every copy.

        Returns ``rewards`` (num_envs, n_agents) float32, ``terminated`` (num_envs,)
        bool and ``invalid_action`` (num_envs, n_agents) bool: the action had no effect.
        Time limits are handled by the faces, not here.
        """

    # --- views -------------------------------------------------------------------
    # Views write into ``out`` when given (a C-contiguous array of the right shape and
    # dtype), so that the faces reuse their buffers, and return it.
    @abc.abstractmethod
    def observations(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        """Per-agent observations, ``(len(idx), n_agents, obs_dim)`` float32."""

    @abc.abstractmethod
    def action_masks(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        """Legal-action masks, ``(len(idx), n_agents, n_actions)`` int8."""

    @abc.abstractmethod
    def states(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        """Global states for centralised training, ``(len(idx), state_dim)`` float32."""

    @abc.abstractmethod
    def episode_stats(self, idx: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        """Statistics of the current episodes of copies ``idx``, one ``(len(idx),)``
        array per name in ``episode_stat_names``; read by the faces when episodes end."""

    @abc.abstractmethod
    def observation_bounds(self) -> tuple[float | np.ndarray, float | np.ndarray]:
        """Lower and upper bounds of one agent's observation vector."""

    @abc.abstractmethod
    def state_bounds(self) -> tuple[float | np.ndarray, float | np.ndarray]:
        """Lower and upper bounds of the global state vector."""

    # --- options -----------------------------------------------------------------
    @abc.abstractmethod
    def goal_mask(self) -> np.ndarray:
        """Which goals each agent may pursue now, ``(num_envs, n_agents, n_goals)`` bool."""

    @abc.abstractmethod
    def goal_reached(self, goals: np.ndarray) -> np.ndarray:
        """Whether each agent has reached its goal, ``(num_envs, n_agents)`` bool."""

    @abc.abstractmethod
    def goal_encoding(self, goals: np.ndarray) -> np.ndarray:
        """Input for a goal-conditioned policy, ``(num_envs, n_agents, goal_dim)`` float32."""

    @abc.abstractmethod
    def goal_primitive(self, goals: np.ndarray) -> np.ndarray:
        """The primitive action of one-step goals, -1 elsewhere, ``(num_envs, n_agents)``."""

    # --- rendering ---------------------------------------------------------------
    @abc.abstractmethod
    def render_size(self) -> tuple[int, int]:
        """Width and height of a rendered frame in pixels."""

    @abc.abstractmethod
    def draw(self, surface: Any, index: int, episode_return: float) -> None:
        """Draw copy ``index`` onto a pygame ``surface`` of :meth:`render_size`."""


class _Renderer:
    """A pygame canvas that shows a window (``human``) or returns frames (``rgb_array``)."""

    def __init__(self, core: BatchedCore, render_mode: str) -> None:
        from hmarl.envs import _render

        self._canvas = _render.Canvas(core.render_size(), render_mode, core.render_fps, core.name)

    def render(self, core: BatchedCore, index: int, episode_return: float) -> np.ndarray | None:
        core.draw(self._canvas.surface, index, episode_return)
        return self._canvas.present()

    def close(self) -> None:
        self._canvas.close()


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode is not None:
        check_choice("render_mode", render_mode, RENDER_MODES)


class VectorEnv:
    """The batched face: ``num_envs`` copies stepped at once, finished copies reset in place.

    ``step`` returns ``obs`` (a dict of ``observation`` (B, N, obs_dim), ``action_mask``
    (B, N, n_actions) and ``state`` (B, state_dim)), ``rewards`` (B, N), and
    ``terminations``/``truncations`` (B,). ``infos`` always holds the same keys:
    ``invalid_action`` (B, N), and, valid where a copy finished this step,
    ``final_observation``, ``final_state``, ``episode_return``, ``episode_length`` and
    the environment's episode statistics.

    ``obs`` and the per-episode ``infos`` are written into two preallocated sets of
    buffers used in turn, so an array returned by one call stays valid through the next
    call and is overwritten by the one after: copy what must live longer. Episode
    statistics are computed only for the copies that finished.
    """

    def __init__(self, core: BatchedCore, render_mode: str | None = None) -> None:
        _check_render_mode(render_mode)
        self.core = core
        self.render_mode = render_mode
        self.metadata = _metadata(core)
        self._renderer: _Renderer | None = None
        self._episode_return = np.zeros((core.num_envs, core.n_agents), dtype=np.float32)
        self._started = False
        stats = core.episode_stats(slice(None))
        self._buffers = [self._allocate(stats) for _ in range(2)]
        self._turn = 0

    def _allocate(self, stats: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        core = self.core
        B, N = core.num_envs, core.n_agents
        obs: dict[str, np.ndarray] = {
            "observation": np.zeros((B, N, core.obs_dim), dtype=np.float32),
            "action_mask": np.zeros((B, N, core.n_actions), dtype=np.int8),
            "state": np.zeros((B, core.state_dim), dtype=np.float32),
        }
        infos: dict[str, np.ndarray] = {
            "invalid_action": np.zeros((B, N), dtype=bool),
            "final_observation": np.zeros_like(obs["observation"]),
            "final_state": np.zeros_like(obs["state"]),
            "episode_return": np.zeros((B, N), dtype=np.float32),
            "episode_length": np.zeros(B, dtype=np.int64),
        }
        infos.update({name: np.zeros(B, dtype=value.dtype) for name, value in stats.items()})
        return obs, infos

    num_envs = property(lambda self: self.core.num_envs)
    n_agents = property(lambda self: self.core.n_agents)
    n_actions = property(lambda self: self.core.n_actions)
    obs_dim = property(lambda self: self.core.obs_dim)
    state_dim = property(lambda self: self.core.state_dim)
    goal_dim = property(lambda self: self.core.goal_dim)
    goal_names = property(lambda self: list(self.core.goal_names))
    max_cycles = property(lambda self: self.core.max_cycles)
    observation_grid = property(lambda self: self.core.observation_grid)
    goal_grid = property(lambda self: self.core.goal_grid)
    possible_agents = property(lambda self: [f"{self.core.agent_prefix}_{i}" for i in range(self.core.n_agents)])

    def _next_buffers(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        buffers = self._buffers[self._turn]
        self._turn ^= 1
        return buffers

    def _observe(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        core = self.core
        core.observations(out=obs["observation"])
        core.action_masks(out=obs["action_mask"])
        core.states(out=obs["state"])
        return obs

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Start every copy anew; ``seed`` restarts the random stream."""
        if seed is not None or not self._started:
            self.core.seed(seed)
        self._started = True
        self.core.reset_copies(slice(None))
        self._episode_return[:] = 0.0
        return self._observe(self._next_buffers()[0]), {}

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        core = self.core
        actions = check_actions(actions, (core.num_envs, core.n_agents), core.n_actions)
        obs, infos = self._next_buffers()
        rewards, terminated, invalid = core.step_rules(actions)
        core.t += 1
        truncated = (core.t >= core.max_cycles) & ~terminated
        done = terminated | truncated
        self._episode_return += rewards
        infos["invalid_action"] = invalid
        if done.any():
            finished = np.flatnonzero(done)
            infos["final_observation"][finished] = core.observations(finished)
            infos["final_state"][finished] = core.states(finished)
            infos["episode_return"][finished] = self._episode_return[finished]
            infos["episode_length"][finished] = core.t[finished]
            for name, value in core.episode_stats(finished).items():
                infos[name][finished] = value
            core.reset_copies(finished)
            self._episode_return[finished] = 0.0
        self._observe(obs)
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminated, truncated, infos

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here (plain arrays, for checkpoints)."""
        return {
            "core": self.core.get_state(),
            "episode_return": self._episode_return.copy(),
            "started": self._started,
        }

    def set_state(self, saved: Mapping[str, Any]) -> None:
        """Continue from ``saved``, a :meth:`get_state` of an env built alike."""
        if not isinstance(saved, Mapping) or set(saved) != {"core", "episode_return", "started"}:
            raise ValueError("state must be a VectorEnv.get_state() result")
        returns = np.asarray(saved["episode_return"])
        if returns.shape != self._episode_return.shape:
            raise ValueError(f"state's episode_return must have shape {self._episode_return.shape}, got {returns.shape}")
        self.core.set_state(saved["core"])
        self._episode_return[:] = returns
        self._started = bool(saved["started"])

    # --- options -----------------------------------------------------------------
    def _check_goals(self, goals: Any) -> np.ndarray:
        return check_actions(goals, (self.core.num_envs, self.core.n_agents), len(self.core.goal_names))

    def goal_mask(self) -> np.ndarray:
        return self.core.goal_mask()

    def goal_reached(self, goals: Any) -> np.ndarray:
        return self.core.goal_reached(self._check_goals(goals))

    def goal_encoding(self, goals: Any) -> np.ndarray:
        return self.core.goal_encoding(self._check_goals(goals))

    def goal_primitive(self, goals: Any) -> np.ndarray:
        return self.core.goal_primitive(self._check_goals(goals))

    # --- rendering ---------------------------------------------------------------
    def render(self, index: int = 0) -> np.ndarray | None:
        """Render copy ``index``: an (H, W, 3) uint8 frame, or a window in ``human`` mode."""
        if self.render_mode is None:
            raise ValueError("render() needs render_mode='human' or 'rgb_array' at construction")
        check_int("index", index, 0, self.core.num_envs - 1)
        if self._renderer is None:
            self._renderer = _Renderer(self.core, self.render_mode)
        return self._renderer.render(self.core, index, float(self._episode_return[index].sum()))

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _metadata(core: BatchedCore) -> dict[str, Any]:
    return {
        "name": core.name,
        "render_modes": list(RENDER_MODES),
        "render_fps": core.render_fps,
        "is_parallelizable": True,
    }


def observation_box(core: BatchedCore) -> spaces.Box:
    """The space of one agent's observation vector."""
    low, high = core.observation_bounds()
    return spaces.Box(low, high, (core.obs_dim,), np.float32)


def state_box(core: BatchedCore) -> spaces.Box:
    """The space of the global state vector."""
    low, high = core.state_bounds()
    return spaces.Box(low, high, (core.state_dim,), np.float32)


class PettingZooParallelEnv(ParallelEnv):
    """PettingZoo's parallel API over a core of one copy."""

    def __init__(self, core: BatchedCore, render_mode: str | None = None) -> None:
        if core.num_envs != 1:
            raise ValueError(f"the PettingZoo faces wrap one copy, got num_envs={core.num_envs}")
        _check_render_mode(render_mode)
        self.core = core
        self.render_mode = render_mode
        self.metadata = _metadata(core)
        self.possible_agents = [f"{core.agent_prefix}_{i}" for i in range(core.n_agents)]
        self.agents: list[str] = []
        observation = spaces.Dict(
            {
                "observation": observation_box(core),
                "action_mask": spaces.Box(0, 1, (core.n_actions,), np.int8),
            }
        )
        self._observation_spaces = {agent: observation for agent in self.possible_agents}
        action = spaces.Discrete(core.n_actions)
        self._action_spaces = {agent: action for agent in self.possible_agents}
        self.state_space = state_box(core)
        self._renderer: _Renderer | None = None
        self._episode_return = 0.0
        self._started = False

    def observation_space(self, agent: str) -> gymnasium.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.Space:
        return self._action_spaces[agent]

    def _observe(self) -> dict[str, dict[str, np.ndarray]]:
        observation = self.core.observations()[0]
        mask = self.core.action_masks()[0]
        return {agent: {"observation": observation[i], "action_mask": mask[i]} for i, agent in enumerate(self.possible_agents)}

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        if seed is not None or not self._started:
            self.core.seed(seed)
        self._started = True
        self.core.reset_copies(slice(None))
        self.agents = list(self.possible_agents)
        self._episode_return = 0.0
        if self.render_mode == "human":
            self.render()
        return self._observe(), {agent: {} for agent in self.agents}

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise ValueError("step() called on a finished episode (every agent is done); call reset() first")
        if not isinstance(actions, Mapping):
            raise TypeError(f"actions must be a dict keyed by agent, got {type(actions).__name__}")
        missing = [agent for agent in self.agents if agent not in actions]
        extra = [agent for agent in actions if agent not in self.agents]
        if missing or extra:
            raise ValueError(f"actions must name every live agent {self.agents}; missing {missing}, unknown {extra}")
        core = self.core
        values = [actions[agent] for agent in self.possible_agents]
        # Fast path for in-range plain/int64 ints; anything else gets the full checks.
        if all(type(v) in _FAST_INTS and 0 <= v < core.n_actions for v in values):
            array = np.array([values], dtype=np.int64)
        else:
            array = check_actions([values], (1, core.n_agents), core.n_actions)
        rewards, terminated, invalid = core.step_rules(array)
        core.t += 1
        truncated = bool(core.t[0] >= core.max_cycles and not terminated[0])
        ended = bool(terminated[0])
        self._episode_return += float(rewards[0].sum())
        infos: dict[str, dict[str, Any]] = {
            agent: {"invalid_action": flag} for agent, flag in zip(self.agents, invalid[0].tolist(), strict=True)
        }
        if ended or truncated:
            stats = {name: value[0].item() for name, value in core.episode_stats().items()}
            stats["episode_length"] = int(core.t[0])
            for info in infos.values():
                info.update(stats)
        observations = self._observe()
        reward_dict = dict(zip(self.agents, rewards[0].tolist(), strict=True))
        terminations = dict.fromkeys(self.agents, ended)
        truncations = dict.fromkeys(self.agents, truncated)
        if ended or truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, reward_dict, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return self.core.states()[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='human' or 'rgb_array'")
            return None
        if self._renderer is None:
            self._renderer = _Renderer(self.core, self.render_mode)
        return self._renderer.render(self.core, 0, self._episode_return)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def make_constructors(core_cls: Callable[..., BatchedCore]) -> tuple[Callable[..., Any], ...]:
    """The module-level constructors of one environment: ``env, parallel_env, raw_env,
    vector_env``. Keyword arguments are the core's (layout, sizes, reward mode, ...)."""

    def vector_env(num_envs: int = 1, render_mode: str | None = None, **kwargs: Any) -> VectorEnv:
        """The batched face: ``num_envs`` copies with auto-reset (what trainers use)."""
        return VectorEnv(core_cls(num_envs=num_envs, **kwargs), render_mode=render_mode)

    def parallel_env(render_mode: str | None = None, **kwargs: Any) -> PettingZooParallelEnv:
        """PettingZoo's ``ParallelEnv`` face."""
        return PettingZooParallelEnv(core_cls(num_envs=1, **kwargs), render_mode=render_mode)

    def raw_env(render_mode: str | None = None, **kwargs: Any) -> parallel_to_aec_wrapper:
        """PettingZoo's ``AECEnv`` face without the order-enforcing wrapper."""
        return parallel_to_aec_wrapper(parallel_env(render_mode=render_mode, **kwargs))

    def env(render_mode: str | None = None, **kwargs: Any) -> Any:
        """PettingZoo's ``AECEnv`` face, wrapped to enforce the call order."""
        return parallel_to_aec(parallel_env(render_mode=render_mode, **kwargs))

    for constructor in (vector_env, parallel_env, raw_env, env):
        constructor.__doc__ = f"{constructor.__doc__}\n\n{core_cls.__doc__ or ''}"
    return env, parallel_env, raw_env, vector_env
