"""hCom (Tang et al., 2018): CommNet-style values over goals, where each agent also receives
the mean of the other agents' hidden vectors, trained on per-agent SMDP targets."""

from __future__ import annotations

from torch import nn

from hmarl.hier.high_levels.registry import register
from hmarl.hier.high_levels.base import HighLevel
from hmarl.nets import CommGoalQ


@register
class CommHighLevel(HighLevel):
    name = "comm"

    def build_modules(self) -> dict[str, nn.Module]:
        if not self.config.high_shared:
            raise ValueError("high_shared=False needs the independent or qmix high level; comm shares its network")
        spec = self.spec
        return {"agents": CommGoalQ(spec.obs_dim, spec.n_agents, spec.n_goals, self.config.high_hidden_sizes)}
