"""hmarl environments: PettingZoo environments with sparse, delayed rewards.

Each environment is a versioned module (``trash_collection_v0``,
``basketball_defense_v1``) exposing ``env`` (AEC), ``parallel_env``, ``raw_env`` and
``vector_env`` (the batched face). This package depends on numpy, gymnasium,
pettingzoo and pygame only; it never imports torch.

The registry lists the current modules and finds one by name:

>>> from hmarl import envs
>>> envs.names()
['basketball_defense_v1', 'trash_collection_v0']
>>> venv = envs.get("trash_collection_v0").vector_env(num_envs=8, layout="ring")
"""

from __future__ import annotations

import importlib
import types

#: The current version of every environment.
ENVIRONMENTS = ("basketball_defense_v1", "trash_collection_v0")
#: Older versions that still load (with a DeprecationWarning), and their successors.
DEPRECATED = {"basketball_defense_v0": "basketball_defense_v1"}


def names(deprecated: bool = False) -> list[str]:
    """The registered environment modules, with the deprecated versions if asked."""
    return sorted(ENVIRONMENTS + (tuple(DEPRECATED) if deprecated else ()))


def get(name: str) -> types.ModuleType:
    """The environment module ``name`` (e.g. ``"trash_collection_v0"``)."""
    if not isinstance(name, str) or name not in names(deprecated=True):
        raise ValueError(f"env={name!r} is not an hmarl environment; choose one of {names()}")
    return importlib.import_module(f"{__name__}.{name}")


__all__ = ["DEPRECATED", "ENVIRONMENTS", "get", "names"]
