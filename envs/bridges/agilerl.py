"""AgileRL: a registered environment as the PettingZoo parallel env AgileRL's
multi-agent algorithms read, with flat observations and the action masks in the infos.

>>> from agilerl.algorithms import IPPO
>>> from hmarl.envs.bridges.agilerl import parallel_env
>>> env = parallel_env("basketball_defense_v1", n_players=3)
>>> ids = env.possible_agents
>>> agent = IPPO([env.observation_space(a) for a in ids], [env.action_space(a) for a in ids], agent_ids=ids)

The masks are lists of ints: AgileRL 2.58 tests ``None in masks``, which a numpy mask
of one environment makes ambiguous. AgileRL imports ``peft`` without declaring it; the
``agilerl`` extra installs it.
"""

from __future__ import annotations

from typing import Any

from hmarl import envs
from hmarl.envs.bridges.pettingzoo import MasksInInfos


def parallel_env(env: str, **env_kwargs: Any) -> MasksInInfos:
    """The registered environment ``env`` with its masks in the infos, as lists."""
    return MasksInInfos(envs.get(env).parallel_env(**env_kwargs), mask_as_list=True)
