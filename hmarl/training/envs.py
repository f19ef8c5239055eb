"""Environments as trainers see them: the batched face of DESIGN.md.

hmarl environments provide it themselves (``vector_env``); :class:`GymVectorEnv`
presents gymnasium environments the same way (one agent, an all-ones action mask, no
invalid actions), so one training loop serves both. Discrete gymnasium actions are
integers ``(num_envs, 1)``; a bounded 1-D ``Box`` is continuous control: actions are
``(num_envs, 1, action_dim)`` floats, ``n_actions`` is 0 (nothing to mask) and the box
is ``action_low`` / ``action_high``.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Mapping
from typing import Any, Protocol

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from hmarl import envs as hmarl_envs

Arrays = dict[str, np.ndarray]


class BatchedEnv(Protocol):
    num_envs: int
    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int

    def reset(self, seed: int | None = None) -> tuple[Arrays, Arrays]: ...

    def step(self, actions: np.ndarray) -> tuple[Arrays, np.ndarray, np.ndarray, np.ndarray, Arrays]: ...

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...


class GymVectorEnv:
    """``num_envs`` copies of a gymnasium environment behind the batched face."""

    n_agents = 1

    def __init__(self, env_id: str, num_envs: int, **env_kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        make = functools.partial(gymnasium.make, env_id, **env_kwargs)
        self.envs = SyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
        observation_space = self.envs.single_observation_space
        action_space = self.envs.single_action_space
        continuous = (
            isinstance(action_space, gymnasium.spaces.Box)
            and len(action_space.shape) == 1
            and bool(action_space.is_bounded("both"))
        )
        if not (isinstance(action_space, gymnasium.spaces.Discrete) or continuous):
            raise TypeError(f"env={env_id!r} needs a Discrete or a bounded 1-D Box action space, it has {action_space}")
        if not isinstance(observation_space, gymnasium.spaces.Box):
            raise TypeError(f"env={env_id!r} needs a Box observation space, it has {observation_space}")
        self.num_envs = num_envs
        self.continuous = continuous
        self.n_actions = int(action_space.n) if isinstance(action_space, gymnasium.spaces.Discrete) else 0
        box = action_space if continuous and isinstance(action_space, gymnasium.spaces.Box) else None
        self.action_low: tuple[float, ...] = () if box is None else tuple(box.low.tolist())
        self.action_high: tuple[float, ...] = () if box is None else tuple(box.high.tolist())
        self.obs_dim = int(np.prod(observation_space.shape))
        self.state_dim = self.obs_dim
        self._episode_return = np.zeros((num_envs, 1), dtype=np.float32)
        self._episode_length = np.zeros(num_envs, dtype=np.int64)

    def _observe(self, observation: np.ndarray) -> Arrays:
        flat = observation.reshape(self.num_envs, self.obs_dim).astype(np.float32)
        return {
            "observation": flat[:, None, :],
            "action_mask": np.ones((self.num_envs, 1, self.n_actions), dtype=np.int8),
            "state": flat,
        }

    def reset(self, seed: int | None = None) -> tuple[Arrays, Arrays]:
        observation, _ = self.envs.reset(seed=seed)
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0
        return self._observe(observation), {}

    def step(self, actions: np.ndarray) -> tuple[Arrays, np.ndarray, np.ndarray, np.ndarray, Arrays]:
        actions = np.asarray(actions)
        shape = (self.num_envs, 1, len(self.action_low)) if self.continuous else (self.num_envs, 1)
        if actions.shape != shape:
            raise ValueError(f"actions must have shape {shape}, got {actions.shape}")
        if self.continuous and not (
            (actions >= np.asarray(self.action_low)).all() and (actions <= np.asarray(self.action_high)).all()
        ):
            raise ValueError(f"actions must lie in the action box [{list(self.action_low)}, {list(self.action_high)}]")
        observation, reward, terminated, truncated, info = self.envs.step(actions[:, 0])
        rewards = np.asarray(reward, dtype=np.float32)[:, None]
        self._episode_return += rewards
        self._episode_length += 1
        obs = self._observe(observation)
        final_observation = obs["observation"].copy()
        done = terminated | truncated
        for index in np.flatnonzero(done):
            final_observation[index, 0] = np.asarray(info["final_obs"][index], dtype=np.float32).ravel()
        infos = {
            "invalid_action": np.zeros((self.num_envs, 1), dtype=bool),
            "final_observation": final_observation,
            "final_state": final_observation[:, 0],
            "episode_return": self._episode_return.copy(),
            "episode_length": self._episode_length.copy(),
        }
        self._episode_return[done] = 0.0
        self._episode_length[done] = 0
        return obs, rewards, np.asarray(terminated, bool), np.asarray(truncated, bool), infos

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly; gymnasium environments keep their state
        in Python objects, so they are pickled."""
        return {
            "envs": pickle.dumps(self.envs),
            "episode_return": self._episode_return.copy(),
            "episode_length": self._episode_length.copy(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.envs = pickle.loads(state["envs"])
        self._episode_return[:] = state["episode_return"]
        self._episode_length[:] = state["episode_length"]

    def close(self) -> None:
        self.envs.close()


class RenderingEnv(BatchedEnv, Protocol):
    """The batched face of an ``hmarl.envs`` environment: it draws its copies and keeps
    the core of its rules."""

    metadata: dict[str, Any]
    core: Any

    def render(self, index: int = 0) -> np.ndarray | None: ...


def render_frame(env: RenderingEnv, index: int = 0) -> np.ndarray:
    """Copy ``index`` of ``env`` drawn as an RGB array (``env`` made with ``render_mode='rgb_array'``)."""
    frame = env.render(index)
    if frame is None:
        raise ValueError("the environment returned no frame; make it with render_mode='rgb_array'")
    return frame


def make_rendering_env(env: str, num_envs: int, env_kwargs: Mapping[str, Any] | None = None) -> RenderingEnv:
    """The batched face of the ``hmarl.envs`` environment ``env`` (others draw nothing)."""
    if env not in hmarl_envs.names(deprecated=True):
        raise ValueError(f"env={env!r} is not an hmarl.envs environment; hmarl.envs has {', '.join(hmarl_envs.names())}")
    return hmarl_envs.get(env).vector_env(num_envs=num_envs, **dict(env_kwargs or {}))


def make_vector_env(env: str, num_envs: int, env_kwargs: Mapping[str, Any] | None = None) -> BatchedEnv:
    """The batched face of ``env``: an ``hmarl.envs`` module name or a gymnasium id."""
    env_kwargs = dict(env_kwargs or {})
    if env in hmarl_envs.names(deprecated=True):
        return hmarl_envs.get(env).vector_env(num_envs=num_envs, **env_kwargs)
    if env not in gymnasium.registry:
        raise ValueError(
            f"env={env!r} is neither an hmarl.envs module nor a registered gymnasium environment; "
            f"hmarl.envs has {', '.join(hmarl_envs.names())}"
        )
    return GymVectorEnv(env, num_envs, **env_kwargs)
