"""gymnasium ids for EPyMARL and other single-process multi-agent code: one
``gymnasium.Env`` whose observation and action spaces are Tuples over the agents.

>>> import gymnasium
>>> env = gymnasium.make("hmarl.envs.bridges.gymnasium:hmarl/trash_collection-v0", layout="ring")
>>> obs, info = env.reset(seed=0)   # obs: one observation per agent

EPyMARL runs it as
``--env-config=gymma with env_args.key="hmarl.envs.bridges.gymnasium:hmarl/basketball_defense-v1" env_args.time_limit=200``.

What EPyMARL's ``gymma`` needs: ``unwrapped.n_agents``; rewards as a list over **all**
agents at every step, the last step's (where sparse rewards are paid) included;
``terminated`` one bool for the team; infos flat and numeric (``invalid_actions``, the
count of actions without effect, and at the end of an episode its statistics). For
centralised critics and masking, ``unwrapped.state()`` with ``state_size``, and
``unwrapped.action_masks()`` (also as ``get_avail_actions()``), one 0/1 list per agent.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from hmarl import envs
from hmarl.envs._base import observation_box, state_box


def gym_id(name: str) -> str:
    """The gymnasium id of a registered environment module: ``trash_collection_v0`` ->
    ``hmarl/trash_collection-v0``."""
    base, version = name.rsplit("_v", 1)
    return f"hmarl/{base}-v{version}"


class GymnasiumEnv(gymnasium.Env):
    """One copy of the hmarl environment ``env`` (a registry name) as a gymnasium env
    over Tuples of per-agent observations and actions."""

    def __init__(self, env: str, render_mode: str | None = None, **env_kwargs: Any) -> None:
        self.venv = envs.get(env).vector_env(num_envs=1, render_mode=render_mode, **env_kwargs)
        core = self.venv.core
        self.n_agents = core.n_agents
        self.state_size = core.state_dim
        self.metadata = self.venv.metadata
        self.render_mode = render_mode
        self.observation_space = spaces.Tuple([observation_box(core)] * self.n_agents)
        self.action_space = spaces.Tuple([spaces.Discrete(core.n_actions)] * self.n_agents)
        self.state_space = state_box(core)
        self._obs: dict[str, np.ndarray] | None = None
        self._next: dict[str, np.ndarray] | None = None
        self._final = False

    def _tuple(self, observation: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(observation[0].copy())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[tuple, dict]:
        super().reset(seed=seed)
        if self._final and seed is None and self._next is not None:
            # The batched face already started the next episode at the final step.
            self._obs = self._next
        else:
            self._obs, _ = self.venv.reset(seed=seed)
        self._final = False
        return self._tuple(self._obs["observation"]), {}

    # One reward per agent, as EPyMARL's gymma reads it, not gymnasium's single float.
    def step(self, actions: Any) -> tuple[tuple, list[float], bool, bool, dict[str, float]]:  # type: ignore[override]
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        if self._final:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        obs, rewards, terminated, truncated, infos = self.venv.step(np.asarray(actions).reshape(1, -1))
        done = bool(terminated[0] or truncated[0])
        info: dict[str, float] = {"invalid_actions": float(infos["invalid_action"][0].sum())}
        if done:
            self._final = True
            info.update({name: float(infos[name][0]) for name in (*self.venv.core.episode_stat_names, "episode_length")})
            # The episode's last observation, not the one the batched face reset to.
            observation = infos["final_observation"]
            self._next = {key: value.copy() for key, value in obs.items()}
            self._obs = {
                "observation": observation,
                "action_mask": np.ones_like(obs["action_mask"]),
                "state": infos["final_state"],
            }
        else:
            observation = obs["observation"]
            self._obs = obs
        return self._tuple(observation), rewards[0].tolist(), bool(terminated[0]), bool(truncated[0]), info

    def state(self) -> np.ndarray:
        """The global state, ``(state_size,)`` float32."""
        return self._require()["state"][0].copy()

    def action_masks(self) -> list[list[int]]:
        """Legal actions per agent, 0/1 lists (all ones after the final step)."""
        return self._require()["action_mask"][0].astype(int).tolist()

    get_avail_actions = action_masks

    def _require(self) -> dict[str, np.ndarray]:
        if self._obs is None:
            raise RuntimeError("call reset() first")
        return self._obs

    def render(self) -> np.ndarray | None:
        return self.venv.render()

    def close(self) -> None:
        self.venv.close()


def register() -> list[str]:
    """Register ``hmarl/<name>-v<N>`` for every environment of the registry (deprecated
    versions included); returns the ids. Runs when this module is imported."""
    ids = []
    for name in envs.names(deprecated=True):
        env_id = gym_id(name)
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=f"{__name__}:GymnasiumEnv", kwargs={"env": name})
        ids.append(env_id)
    return ids


IDS = register()
