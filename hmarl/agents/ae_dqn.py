"""AE-DQN (Zahavy et al., 2018): DQN that learns which actions to leave out.

Next to the Q-network, the action-elimination component (:mod:`hmarl.elimination`: an
elimination network trained on the environment's ``invalid_action`` signal and a linear
contextual bandit on its features) eliminates the actions that are confidently invalid.
Greedy choice, exploration and the target's max range over the remaining actions only,
so the agent needs no action mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hmarl.agents.dqn import DQN, DQNConfig, Tensors
from hmarl.core import Field, RowLoss, option
from hmarl.elimination import BANDIT_CHUNK, ActionElimination, EliminationConfig


@dataclass
class AEDQNConfig(DQNConfig, EliminationConfig):
    """AE-DQN's options on top of DQN's."""

    use_action_mask: bool = option(False, "honour the environment's action mask in acting and in targets")


class AEDQN(DQN):
    """DQN whose action choices and targets skip the actions the bandit eliminates."""

    config: AEDQNConfig

    def __init__(
        self,
        config: AEDQNConfig,
        obs_dim: int,
        n_actions: int,
        num_streams: int,
        total_steps: int,
        total_updates: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        obs_grid: tuple[int, ...] = (),
    ) -> None:
        self.elimination = ActionElimination(config, obs_dim, n_actions, obs_grid, torch.device(device), seed)
        self.elimination_network = self.elimination.network
        super().__init__(config, obs_dim, n_actions, num_streams, total_steps, total_updates, device, seed)

    def networks(self) -> dict[str, nn.Module]:
        return {"q": self.q_network, "elimination": self.elimination_network}

    def replay_fields(self) -> dict[str, Field]:
        return {**super().replay_fields(), "invalid_action": Field((), torch.bool)}

    def stream_transition(self, transition: Tensors) -> dict[str, torch.Tensor]:
        row = {**super().stream_transition(transition), "invalid_action": transition["invalid_action"].flatten()}
        self.elimination.observe(row["observation"], row["action"], row["invalid_action"])
        return row

    def allowed_actions(self, observation: torch.Tensor, env_mask: torch.Tensor | None) -> torch.Tensor | None:
        return self.elimination.restrict(super().allowed_actions(observation, env_mask), observation)

    def update(self) -> dict[str, Any]:
        # Admissible actions are counted over the states visited lately.
        self.elimination.refit_due(
            self.engine.updates, lambda: self.replay.recent(("observation",), BANDIT_CHUNK)["observation"]
        )
        return {**super().update(), "admissible_actions": self.elimination.mean_admissible}

    def loss(self, batch: Tensors) -> tuple[RowLoss, dict[str, torch.Tensor]]:
        rows, extras = super().loss(batch)
        elimination_loss = self.elimination.loss(batch["observation"], batch["action"], batch["invalid_action"])
        rows.auxiliary = elimination_loss
        return rows, {**extras, "td_loss": rows.values.detach().mean(), "elimination_loss": elimination_loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.elimination.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.elimination.load_state_dict(state)
