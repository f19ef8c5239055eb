"""A PettingZoo parallel env with flat observations and the action masks in the infos,
the form AgileRL reads (and TorchRL accepts, giving the flat key
``(group, "observation")``).

>>> from hmarl.envs import trash_collection_v0
>>> from hmarl.envs.bridges.pettingzoo import MasksInInfos
>>> env = MasksInInfos(trash_collection_v0.parallel_env(layout="ring"))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv


class MasksInInfos(ParallelEnv):
    """``env`` with each agent's observation the ``"observation"`` array of its Dict
    observation, and its ``"action_mask"`` (int8 0/1) in ``infos[agent]["action_mask"]``
    after every reset and step (the final step's included); ``mask_as_list`` gives
    the mask as a list of ints instead of an array."""

    def __init__(self, env: ParallelEnv, mask_as_list: bool = False) -> None:
        self.env = env
        self.mask_as_list = mask_as_list
        self.metadata = env.metadata
        self.possible_agents = list(env.possible_agents)
        self.render_mode = getattr(env, "render_mode", None)
        self.state_space = env.state_space
        self._observation_spaces = {agent: env.observation_space(agent)["observation"] for agent in self.possible_agents}

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def unwrapped(self) -> ParallelEnv:
        return self.env.unwrapped

    def observation_space(self, agent: str) -> gymnasium.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.Space:
        return self.env.action_space(agent)

    def _split(self, observations: Mapping[str, Any], infos: Mapping[str, dict]) -> tuple[dict, dict]:
        flat = {agent: value["observation"] for agent, value in observations.items()}
        merged = {
            agent: {
                **infos.get(agent, {}),
                "action_mask": value["action_mask"].tolist() if self.mask_as_list else value["action_mask"],
            }
            for agent, value in observations.items()
        }
        return flat, merged

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._split(observations, infos)

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        flat, merged = self._split(observations, infos)
        return flat, rewards, terminations, truncations, merged

    def state(self) -> np.ndarray:
        return self.env.state()

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
