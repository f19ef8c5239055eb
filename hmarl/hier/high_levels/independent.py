"""Ind-hDQN (Tang et al., 2018): each agent's Q over goals from its own observation (one
network with the agent id as input, or one per agent with ``--no-high-shared``), trained
on per-agent SMDP targets. Everything it needs is :class:`HighLevel`'s default."""

from __future__ import annotations

from hmarl.hier.high_levels.registry import register
from hmarl.hier.high_levels.base import HighLevel


@register
class IndependentHighLevel(HighLevel):
    name = "independent"
