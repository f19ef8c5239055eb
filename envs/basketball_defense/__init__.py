"""Half-court basketball defense: the batched core, its rule book and scripted players."""

from __future__ import annotations

import math
from collections.abc import Mapping

from hmarl.envs.basketball_defense.core import ACTION_NAMES, BasketballDefenseCore
from hmarl.envs.basketball_defense.rules import OUTCOMES, SKILLS

__all__ = ["ACTION_NAMES", "OUTCOMES", "SKILLS", "BasketballDefenseCore", "possession_rates"]


def possession_rates(metrics: Mapping[str, float]) -> dict[str, float]:
    """Stop, miss-shot, block-shot and steal rates and points per possession from the
    per-possession means of the episode statistics (``shot``, ``miss``, ``block``,
    ``steal``, ``points_allowed``); a stop is any possession without a made shot."""
    made = metrics.get("shot", math.nan) - metrics.get("miss", math.nan) - metrics.get("block", math.nan)
    return {
        "stop": 1.0 - made,
        "miss": metrics.get("miss", math.nan),
        "block": metrics.get("block", math.nan),
        "steal": metrics.get("steal", math.nan),
        "points": metrics.get("points_allowed", math.nan),
    }
