"""Basketball defense, version 0: defenders (the agents) against a scripted offense.

``env``, ``parallel_env`` and ``raw_env`` are PettingZoo's AEC and parallel faces;
``vector_env`` is the batched face with auto-reset that trainers use. See
:class:`hmarl.envs.basketball_defense.BasketballDefenseCore` for the rules.
"""

from hmarl.envs._base import make_constructors
from hmarl.envs.basketball_defense import BasketballDefenseCore

env, parallel_env, raw_env, vector_env = make_constructors(BasketballDefenseCore)

__all__ = ["env", "parallel_env", "raw_env", "vector_env"]
