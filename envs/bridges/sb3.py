"""Stable-Baselines3: every agent of every copy as one lane of a ``VecEnv``, with the
action masks that sb3-contrib's ``MaskablePPO`` reads.

>>> from sb3_contrib import MaskablePPO
>>> from hmarl.envs.bridges.sb3 import masked_vec_env
>>> MaskablePPO("MlpPolicy", masked_vec_env("trash_collection_v0", 8, layout="ring"), seed=0).learn(4096)

Agents share one policy (parameter sharing, as SuperSuit's agents-as-lanes vector env).
``masked_vec_env`` wraps the lanes in SB3's ``VecMonitor``, so the episode returns SB3
logs are the sums of the rewards it received.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from hmarl.envs._base import observation_box
from hmarl.envs.bridges import vector_env


class MaskedVecEnv(VecEnv):
    """``venv``'s ``num_envs x n_agents`` agents as lanes (copy-major): lane
    ``b * n_agents + i`` is agent ``i`` of copy ``b``."""

    def __init__(self, venv: Any) -> None:
        self.venv = venv
        self.n_agents = venv.n_agents
        self._lanes = venv.num_envs * venv.n_agents
        self._masks = np.ones((self._lanes, venv.n_actions), dtype=bool)
        self._actions: np.ndarray | None = None
        super().__init__(self._lanes, observation_box(venv.core), spaces.Discrete(venv.n_actions))

    def _lanes_of(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self._masks = obs["action_mask"].reshape(self._lanes, -1).astype(bool)
        return obs["observation"].reshape(self._lanes, -1).copy()

    def reset(self) -> np.ndarray:
        obs, _ = self.venv.reset(seed=self._seeds[0])
        self._reset_seeds()
        return self._lanes_of(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.venv.num_envs, self.n_agents)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_async() must come before step_wait()")
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        self._actions = None
        done = np.repeat(terminated | truncated, self.n_agents)
        time_limit = np.repeat(truncated & ~terminated, self.n_agents)
        invalid = infos["invalid_action"].reshape(-1)
        lane_infos: list[dict[str, Any]] = [{"invalid_action": bool(flag)} for flag in invalid]
        if done.any():
            final = infos["final_observation"].reshape(self._lanes, -1)
            for lane in np.flatnonzero(done):
                lane_infos[lane]["terminal_observation"] = final[lane].copy()
                lane_infos[lane]["TimeLimit.truncated"] = bool(time_limit[lane])
        return self._lanes_of(obs), rewards.reshape(-1).copy(), done, lane_infos

    def action_masks(self) -> np.ndarray:
        """Legal actions of every lane, ``(num_envs, n_actions)`` bool."""
        return self._masks

    def _indices(self, indices: int | Iterable[int] | None) -> list[int]:
        if indices is None:
            return list(range(self._lanes))
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: int | Iterable[int] | None = None) -> list[Any]:
        if attr_name == "action_masks":
            return [self.action_masks] * len(self._indices(indices))
        if attr_name == "render_mode":
            return [self.venv.render_mode] * len(self._indices(indices))
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: int | Iterable[int] | None = None) -> None:
        raise AttributeError(f"the lanes of {type(self).__name__} share one env; set_attr({attr_name!r}) is not supported")

    def env_method(self, method_name: str, *args: Any, indices: int | Iterable[int] | None = None, **kwargs: Any) -> list[Any]:
        if method_name != "action_masks":
            raise AttributeError(f"env_method supports only 'action_masks', got {method_name!r}")
        return list(self._masks[self._indices(indices)])

    def env_is_wrapped(self, wrapper_class: type, indices: int | Iterable[int] | None = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def close(self) -> None:
        self.venv.close()


def masked_vec_env(env: str, num_envs: int = 1, **env_kwargs: Any) -> VecMonitor:
    """``num_envs`` copies of the registered environment ``env`` as a monitored
    :class:`MaskedVecEnv` (``num_envs * n_agents`` lanes)."""
    return VecMonitor(MaskedVecEnv(vector_env(env, num_envs, env_kwargs)))
