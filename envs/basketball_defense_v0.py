"""Basketball defense, version 0 (deprecated: use :mod:`hmarl.envs.basketball_defense_v1`).

Kept so that runs and checkpoints made with it still load and replay: its rules are
v1's, except that the action mask forbids every move during the 0.5 s check although
moves take effect there.

Version History
---------------
* v0: initial release. Its goals changed in place twice: the ``block`` goal became
  feasible only at the release of a shot, and ``guard_k`` became reached at the guard
  spot; v1 carries both.
"""

import warnings

from hmarl.envs._base import make_constructors
from hmarl.envs.basketball_defense.core import BasketballDefenseCoreV0

warnings.warn(
    "basketball_defense_v0 is deprecated: its action mask forbids moves during the check "
    "although they take effect; use hmarl.envs.basketball_defense_v1",
    DeprecationWarning,
    stacklevel=2,
)

env, parallel_env, raw_env, vector_env = make_constructors(BasketballDefenseCoreV0)

__all__ = ["env", "parallel_env", "raw_env", "vector_env"]
