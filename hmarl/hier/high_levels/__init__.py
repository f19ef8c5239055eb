"""The high levels of the hierarchical learner, by name.

A new high level is one module holding a :class:`HighLevel` subclass decorated with
:func:`register`, and one import line here (outside the package, importing the module
is enough). ``--high-level NAME`` then selects it, and its ``Options`` become a section
of the trainers' configuration.
"""

from hmarl.hier.high_levels import comm, independent, qmix, random_goals  # noqa: F401  (registers them)
from hmarl.hier.high_levels.base import HighLevel
from hmarl.hier.high_levels.qmix import QmixOptions
from hmarl.hier.high_levels.registry import HIGH_LEVELS, high_level_class, high_level_sections, register

__all__ = ["HIGH_LEVELS", "HighLevel", "QmixOptions", "high_level_class", "high_level_sections", "register"]
