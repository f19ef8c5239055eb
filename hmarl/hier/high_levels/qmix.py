"""hQmix (Tang et al., 2018): the agents' chosen values mixed by a monotonic QMIX network on
the global state, ``Q_tot(s) = mix(Q_1..Q_N, s)``, regressed on ``R + gamma**tau *
mix'(V_1..V_N, s')`` with the team reward ``R = sum_i R_i`` (``team_reward="sum"``, for
individual rewards) or ``mean_i R_i`` ("mean", for a shared reward that every agent
receives and that the sum would count ``N`` times). With ``return_regularizer`` the
penalty is on ``Q_tot`` against the team's return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hmarl.core import Field, RowLoss, check_choice, option
from hmarl.hier.acer import RETURN_FIELD
from hmarl.hier.high_levels.registry import register
from hmarl.hier.high_levels.base import HighLevel, Tensors, team_sum_or_mean
from hmarl.nets import QMixer

TEAM_REWARDS = ("sum", "mean")


@dataclass
class QmixOptions:
    """hQmix's own options."""

    # 8 rather than QMIX's 32: a wide mixer leaves the agents' values flat over goals on room
    # (docs/results/reproduction.md#why-hqmixs-defaults-are-what-they-are).
    mixer_embed: int = option(8, "hQmix: width of the mixing network")
    team_reward: str = option(
        "sum",
        "hQmix: the team reward its mixed value learns: sum of the agents' rewards (for individual "
        "rewards) or their mean (for a shared reward that every agent receives, counted once)",
        choices=TEAM_REWARDS,
    )


@register
class QmixHighLevel(HighLevel):
    name = "qmix"
    Options = QmixOptions
    options: QmixOptions

    def build_modules(self) -> dict[str, nn.Module]:
        check_choice("team_reward", self.options.team_reward, TEAM_REWARDS)
        if self.options.mixer_embed < 1:
            raise ValueError(f"mixer_embed must be >= 1, got {self.options.mixer_embed}")
        modules = super().build_modules()
        modules["mixer"] = QMixer(self.spec.n_agents, self.spec.state_dim, self.options.mixer_embed)
        return modules

    def extra_fields(self) -> dict[str, Field]:
        return {
            "state": Field((self.spec.state_dim,), self.obs_dtype),
            "next_state": Field((self.spec.state_dim,), self.obs_dtype),
        }

    def team_quantity(self, per_agent: Any) -> Any:
        """The team quantity of per-agent rewards or returns ``(..., N) -> (...)``, as ``team_reward`` says."""
        return team_sum_or_mean(per_agent, self.options.team_reward)

    @torch.no_grad()
    def goal_values(self, observation: torch.Tensor, state: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """``Q_tot(s, g)`` ``(num_envs,)``, of the team reward."""
        return self.learning_engine.modules["mixer"](self.chosen_values(observation, goals), state.float())

    def loss(self, batch: Tensors) -> tuple[RowLoss, dict[str, torch.Tensor]]:
        q_taken = self.chosen_values(batch["obs"], batch["goal"])
        next_value, discount = self.smdp_targets(batch)
        q_total = self.learning_engine.modules["mixer"](q_taken, batch["state"].float())
        with torch.no_grad():
            next_total = self.learning_engine.targets["mixer"](next_value, batch["next_state"].float())
            target = self.team_quantity(batch["reward"]) + discount * next_total
        errors = F.smooth_l1_loss(q_total.float(), target.float(), reduction="none")
        extras: dict[str, torch.Tensor] = {"q_mean": q_taken.detach().mean()}
        weight = self.config.return_regularizer
        if weight > 0:
            gap = q_total.float() - self.team_quantity(batch[RETURN_FIELD])
            extras["return_gap"] = gap.detach().mean()
            errors = errors + weight * gap.square()
        return RowLoss(errors, scores=(target.float() - q_total.detach().float()).abs()), extras
