"""Half-court basketball defense: the batched core, its rule book and scripted players."""

from hmarl.envs.basketball_defense.core import ACTION_NAMES, BasketballDefenseCore
from hmarl.envs.basketball_defense.rules import OUTCOMES, SKILLS

__all__ = ["ACTION_NAMES", "OUTCOMES", "SKILLS", "BasketballDefenseCore"]
