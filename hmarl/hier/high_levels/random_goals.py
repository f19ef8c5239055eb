"""The low-level-only baseline: goals drawn uniformly among the feasible ones; only the
low level learns."""

from __future__ import annotations

from hmarl.hier.high_levels.registry import register
from hmarl.hier.high_levels.base import HighLevel


@register
class RandomHighLevel(HighLevel):
    name = "random"
    learns = False
