"""Adapters that present hmarl environments to other MARL libraries.

Each module imports its library only when used, so ``hmarl.envs`` itself needs none of
them. Every adapter reports the rewards of all agents at every step, the final step's
sparse reward included.

* :mod:`~hmarl.envs.bridges.gymnasium` - gymnasium ids ``hmarl/<name>-v<N>`` with Tuple
  spaces, as EPyMARL's ``gymma`` environment reads them;
* :mod:`~hmarl.envs.bridges.sb3` - a masked Stable-Baselines3 ``VecEnv`` (every agent
  of every copy is one lane) for sb3-contrib's ``MaskablePPO``;
* :mod:`~hmarl.envs.bridges.rllib` - an RLlib ``MultiAgentEnv`` and a masking PPO
  RLModule;
* :mod:`~hmarl.envs.bridges.benchmarl` - BenchMARL tasks;
* :mod:`~hmarl.envs.bridges.agilerl` - PettingZoo with the masks in the infos, for
  AgileRL (:mod:`~hmarl.envs.bridges.pettingzoo` holds that wrapper).

The ``dev`` extra installs what the gymnasium and SB3 bridges need. RLlib, AgileRL
and BenchMARL pin versions that exclude the ``dev`` extra's: install the ``rllib`` and
``agilerl`` extras together in one virtual environment and ``benchmarl`` in another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hmarl import envs


def vector_env(env: str, num_envs: int, env_kwargs: Mapping[str, Any] | None = None) -> Any:
    """The batched face of the registered environment ``env``."""
    return envs.get(env).vector_env(num_envs=num_envs, **dict(env_kwargs or {}))
