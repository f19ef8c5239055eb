"""Hierarchical multi-agent learners: options, ACER, and Ind-hDQN / hCom / hQmix."""

from hmarl.hier.acer import ACERRecorder
from hmarl.hier.agent import HIGH_LEVEL_HELP, HIGH_LEVELS, GoalPolicy, HierarchicalAgent, HierConfig, HierSpec
from hmarl.hier.options import OptionOutcome, Options

__all__ = [
    "HIGH_LEVEL_HELP",
    "HIGH_LEVELS",
    "ACERRecorder",
    "GoalPolicy",
    "HierConfig",
    "HierSpec",
    "HierarchicalAgent",
    "OptionOutcome",
    "Options",
]
