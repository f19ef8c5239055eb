"""One batched simulation core per environment, and the faces over it.

Every hmarl environment implements its rules once, as a :class:`BatchedCore` whose
state arrays are shaped ``(num_envs, ...)`` and stepped for all copies with array
operations. Three faces sit over that core:

* :class:`VectorEnv` - the batched face trainers use, with auto-reset;
* :class:`PettingZooParallelEnv` - PettingZoo's ``ParallelEnv`` over a core of one copy;
* the AEC face, PettingZoo's own ``parallel_to_aec`` conversion of the parallel face.

Because the rules exist once, the faces cannot drift apart; a test checks that they
produce identical trajectories for the same seed and actions.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

RENDER_MODES = ("human", "rgb_array")


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
        raise ValueError(
            f"action {bad} is outside the action space; valid actions are 0..{n_actions - 1}"
        )
    return array.astype(np.int64, copy=False)


_FAST_INTS = (int, np.int64)


class BatchedCore(abc.ABC):
    """The rules of one environment for ``num_envs`` independent copies.

    A subclass sets the class attributes and, in ``__init__``, the sizes
    ``n_agents``, ``n_actions``, ``obs_dim``, ``state_dim``, ``goal_dim``,
    ``goal_names`` and ``max_cycles``; it allocates its state arrays with a leading
    ``num_envs`` axis and implements the abstract methods below. Methods that take
    ``idx`` accept an integer index array of copies or ``slice(None)`` for all of them.
    Randomness comes only from ``self.rng``, so one seed fixes a whole run.
    """

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

    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int
    goal_dim: int
    goal_names: list[str]
    max_cycles: int

    def __init__(self, num_envs: int = 1) -> None:
        self.num_envs = check_int("num_envs", num_envs, 1)
        self.rng = np.random.default_rng()
        self.t = np.zeros(self.num_envs, dtype=np.int64)

    def seed(self, seed: int | None) -> None:
        """Restart the random stream; ``None`` draws fresh entropy."""
        if seed is not None:
            check_int("seed", seed, 0)
        self.rng = np.random.default_rng(seed)

    def reset_copies(self, idx: np.ndarray | slice) -> None:
        """Start a new episode in the copies ``idx``."""
        self.t[idx] = 0
        self._reset(idx)

    # --- rules -------------------------------------------------------------------
    @abc.abstractmethod
    def _reset(self, idx: np.ndarray | slice) -> None:
        """Draw initial states for copies ``idx`` (``self.t`` is already zeroed)."""

    @abc.abstractmethod
    def step_rules(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply validated ``(num_envs, n_agents)`` actions to every copy.

        Returns ``rewards`` (num_envs, n_agents) float32, ``terminated`` (num_envs,)
        bool and ``invalid_action`` (num_envs, n_agents) bool: the action had no effect.
        Time limits are handled by the faces, not here.
        """

    # --- views -------------------------------------------------------------------
    @abc.abstractmethod
    def observations(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Per-agent observations, ``(len(idx), n_agents, obs_dim)`` float32."""

    @abc.abstractmethod
    def action_masks(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Legal-action masks, ``(len(idx), n_agents, n_actions)`` int8."""

    @abc.abstractmethod
    def states(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Global states for centralised training, ``(len(idx), state_dim)`` float32."""

    @abc.abstractmethod
    def episode_stats(self) -> dict[str, np.ndarray]:
        """Statistics of the current episodes, one ``(num_envs,)`` array per name in
        ``episode_stat_names``; read by the faces when an episode ends."""

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
    """

    def __init__(self, core: BatchedCore, render_mode: str | None = None) -> None:
        _check_render_mode(render_mode)
        self.core = core
        self.render_mode = render_mode
        self.metadata = _metadata(core)
        self._renderer: _Renderer | None = None
        self._episode_return = np.zeros((core.num_envs, core.n_agents), dtype=np.float32)
        self._started = False

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
    possible_agents = property(
        lambda self: [f"{self.core.agent_prefix}_{i}" for i in range(self.core.n_agents)]
    )

    def _observe(self, idx: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        return {
            "observation": self.core.observations(idx),
            "action_mask": self.core.action_masks(idx),
            "state": self.core.states(idx),
        }

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Start every copy anew; ``seed`` restarts the random stream."""
        if seed is not None or not self._started:
            self.core.seed(seed)
        self._started = True
        self.core.reset_copies(slice(None))
        self._episode_return[:] = 0.0
        return self._observe(), {}

    def step(self, actions: Any) -> tuple[
        dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]
    ]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        core = self.core
        actions = check_actions(actions, (core.num_envs, core.n_agents), core.n_actions)
        rewards, terminated, invalid = core.step_rules(actions)
        core.t += 1
        truncated = (core.t >= core.max_cycles) & ~terminated
        done = terminated | truncated
        self._episode_return += rewards
        obs = self._observe()
        infos: dict[str, np.ndarray] = {
            "invalid_action": invalid,
            "final_observation": obs["observation"],
            "final_state": obs["state"],
            "episode_return": self._episode_return.copy(),
            "episode_length": core.t.copy(),
        }
        infos.update(core.episode_stats())
        if done.any():
            finished = np.flatnonzero(done)
            core.reset_copies(finished)
            self._episode_return[finished] = 0.0
            fresh = self._observe(finished)
            obs = {key: value.copy() for key, value in obs.items()}
            for key, value in fresh.items():
                obs[key][finished] = value
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminated, truncated, infos

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
        low, high = core.observation_bounds()
        observation = spaces.Dict(
            {
                "observation": spaces.Box(low, high, (core.obs_dim,), np.float32),
                "action_mask": spaces.Box(0, 1, (core.n_actions,), np.int8),
            }
        )
        self._observation_spaces = {agent: observation for agent in self.possible_agents}
        action = spaces.Discrete(core.n_actions)
        self._action_spaces = {agent: action for agent in self.possible_agents}
        low, high = core.state_bounds()
        self.state_space = spaces.Box(low, high, (core.state_dim,), np.float32)
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
        return {
            agent: {"observation": observation[i], "action_mask": mask[i]}
            for i, agent in enumerate(self.possible_agents)
        }

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
            raise ValueError(
                "step() called on a finished episode (every agent is done); call reset() first"
            )
        if not isinstance(actions, Mapping):
            raise TypeError(f"actions must be a dict keyed by agent, got {type(actions).__name__}")
        missing = [agent for agent in self.agents if agent not in actions]
        extra = [agent for agent in actions if agent not in self.agents]
        if missing or extra:
            raise ValueError(
                f"actions must name every live agent {self.agents}; "
                f"missing {missing}, unknown {extra}"
            )
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
        terminated = bool(terminated[0])
        self._episode_return += float(rewards[0].sum())
        infos: dict[str, dict[str, Any]] = {
            agent: {"invalid_action": flag} for agent, flag in zip(self.agents, invalid[0].tolist())
        }
        if terminated or truncated:
            stats = {name: value[0].item() for name, value in core.episode_stats().items()}
            stats["episode_length"] = int(core.t[0])
            for info in infos.values():
                info.update(stats)
        observations = self._observe()
        reward_dict = dict(zip(self.agents, rewards[0].tolist()))
        terminations = dict.fromkeys(self.agents, terminated)
        truncations = dict.fromkeys(self.agents, truncated)
        if terminated or truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, reward_dict, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return self.core.states()[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() called without a render_mode; pass render_mode='human' or 'rgb_array'"
            )
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
