"""A new high level in one file: VDN (Sunehag et al., 2018) over goals.

The team's value is the plain sum of the agents' chosen values, ``Q_tot = sum_i Q_i``,
regressed on the team reward plus the discounted sum of the agents' bootstrap values.
Everything else (ACER's rows, the SMDP double-Q bootstrap, the low level, acting,
replay, checkpoints, the trainers' command line) comes from the package unchanged:
the class below and its ``@register`` are the whole extension.

    python examples/new_high_level.py --total-steps 60000     # trains it on room
"""

from __future__ import annotations

import sys
from typing import Any

import torch
import torch.nn.functional as F

from hmarl.core import RowLoss
from hmarl.hier.high_levels import HighLevel, register


@register
class VdnHighLevel(HighLevel):
    """VDN: the agents' values summed into the team's."""

    name = "vdn"

    def team_quantity(self, per_agent: Any) -> Any:
        return per_agent.sum(-1)

    @torch.no_grad()
    def goal_values(self, observation: torch.Tensor, state: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        return self.chosen_values(observation, goals).sum(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[RowLoss, dict[str, torch.Tensor]]:
        q_taken = self.chosen_values(batch["obs"], batch["goal"])
        next_value, discount = self.smdp_targets(batch)
        q_total = q_taken.sum(-1)
        target = self.team_quantity(batch["reward"]) + discount * next_value.sum(-1)
        errors = F.smooth_l1_loss(q_total.float(), target.float(), reduction="none")
        return RowLoss(errors, scores=(target - q_total.detach()).abs()), {"q_mean": q_taken.detach().mean()}


def main(argv: list[str] | None = None):
    from hmarl.trainers import hierarchical

    return hierarchical.main(["--high-level", "vdn", *(sys.argv[1:] if argv is None else argv)], name="vdn")


if __name__ == "__main__":
    main()
