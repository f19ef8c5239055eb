"""Hierarchical multi-agent learners: options, ACER, the goal-conditioned low level, and
the high levels (Ind-hDQN / hCom / hQmix / low-level-only) behind a registry."""

from hmarl.hier.acer import ACERRecorder
from hmarl.hier.agent import GoalPolicy, HierarchicalAgent, HierConfig
from hmarl.hier.config import HIGH_LEVEL_HELP, HierBaseConfig, HierSpec, high_level_names
from hmarl.hier.high_levels import HIGH_LEVELS, HighLevel, QmixOptions, high_level_class, register
from hmarl.hier.low_level import GoalConditionedLowLevel
from hmarl.hier.options import OptionOutcome, Options

__all__ = [
    "HIGH_LEVELS",
    "HIGH_LEVEL_HELP",
    "ACERRecorder",
    "GoalConditionedLowLevel",
    "GoalPolicy",
    "HierBaseConfig",
    "HierConfig",
    "HierSpec",
    "HierarchicalAgent",
    "HighLevel",
    "OptionOutcome",
    "Options",
    "QmixOptions",
    "high_level_class",
    "high_level_names",
    "register",
]
