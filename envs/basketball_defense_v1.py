"""Basketball defense, version 1: defenders (the agents) against a scripted offense.

``env``, ``parallel_env`` and ``raw_env`` are PettingZoo's AEC and parallel faces;
``vector_env`` is the batched face with auto-reset that trainers use. See
:class:`hmarl.envs.basketball_defense.BasketballDefenseCore` for the rules.

>>> from hmarl.envs import basketball_defense_v1
>>> env = basketball_defense_v1.parallel_env(n_players=3)                # PettingZoo parallel
>>> venv = basketball_defense_v1.vector_env(num_envs=1024, n_players=3)  # batched, auto-reset

Version History
---------------
* v1: the action mask allows moves during the 0.5 s check (they always took effect
  there), so a masked action is always reported in ``invalid_action``. v1 is also the
  first version number for two changes made under v0 without one: the ``block`` goal
  is feasible only at the release of a shot, and ``guard_k`` is reached at the guard
  spot (``GUARD_GAP`` metres from the man towards the basket).
* v0: initial release.
"""

from hmarl.envs._base import make_constructors
from hmarl.envs.basketball_defense import BasketballDefenseCore

env, parallel_env, raw_env, vector_env = make_constructors(BasketballDefenseCore)

__all__ = ["env", "parallel_env", "raw_env", "vector_env"]
