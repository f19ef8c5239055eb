"""Multi-agent trash collection, version 0.

Agents on a grid pick up trash and place it into dumps; rewards are sparse (only a
placement, or the end of a coordination game, pays). The layouts ``room``, ``ring``
and ``coordination`` reproduce the three tasks of Tang et al., "Hierarchical Deep
Multiagent Reinforcement Learning with Temporal Abstraction"; ``random`` draws a
solvable layout per episode; any other string is read as the path of an ASCII map
(legend in ``assets/layouts/README.md``).

>>> from hmarl.envs import trash_collection_v0
>>> env = trash_collection_v0.parallel_env(layout="ring")            # PettingZoo parallel
>>> aec = trash_collection_v0.env(layout="coordination")             # PettingZoo AEC
>>> venv = trash_collection_v0.vector_env(num_envs=1024, layout="room")  # batched, auto-reset

Rules, spaces, rewards and the options interface are documented in
:mod:`hmarl.envs.trash_collection.core`.

Version History
---------------
* v0: initial release. A random layout whose draws all leave too small a floor region
  (1,000 of them, on a crowded grid with dense walls) became a grid without walls
  instead of an error at reset; every layout drawn before is drawn as before.
"""

from hmarl.envs._base import make_constructors
from hmarl.envs.trash_collection.core import ACTION_NAMES, TrashCollectionCore
from hmarl.envs.trash_collection.layouts import BUILTIN_LAYOUTS

LAYOUTS = (*BUILTIN_LAYOUTS, "random")

env, parallel_env, raw_env, vector_env = make_constructors(TrashCollectionCore)

__all__ = [
    "ACTION_NAMES", "LAYOUTS", "TrashCollectionCore", "env", "parallel_env", "raw_env", "vector_env",
]
