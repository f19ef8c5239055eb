"""AE-DQN (Zahavy et al., 2018): DQN that learns which actions to leave out.

Next to the Q-network, an action-elimination network (AEN) is trained with binary
cross-entropy to predict the environment's elimination signal (``invalid_action``:
the taken action had no effect). A linear contextual bandit on the AEN's last hidden
layer then eliminates action ``a`` in state ``s`` when it is confidently invalid:

    theta_a . phi(s) - sqrt(beta * phi(s)^T A_a^{-1} phi(s)) > threshold

with ``A_a = lambda I + sum phi phi^T`` and ``theta_a = A_a^{-1} sum phi e`` over the
replayed transitions that took ``a``. Actions such as trash collection's pick are valid
in few of the states they are tried in; an unweighted BCE fits those states as invalid
too, so by default each action's valid and invalid outcomes weigh equally in the loss
(the bandit still regresses the raw signal, whose mean it estimates). Greedy choice,
exploration and the target's max range over the remaining actions only, so the agent
needs no action mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hmarl.agents.dqn import DQN, DQNConfig, Tensors
from hmarl.core import Field, hard_update, make_target, option
from hmarl.nets import QNetwork

# Features of this many transitions at a time go into the bandit's statistics, which
# bounds the memory of the outer products to chunk * (features + 1)^2 floats.
BANDIT_CHUNK = 2048


@dataclass
class AEDQNConfig(DQNConfig):
    """AE-DQN's options on top of DQN's."""

    use_action_mask: bool = option(False, "honour the environment's action mask in acting and in targets")
    # A narrow last layer keeps the bandit's confidence widths, which grow with the
    # feature dimension, small enough to eliminate after a few hundred tries per action.
    elimination_hidden_sizes: tuple[int, ...] = option((64, 8), "hidden layer widths of the elimination network")
    elimination_lambda: float = option(0.1, "ridge regularisation lambda of the per-action least squares")
    elimination_threshold: float = option(0.6, "eliminate an action when its lower confidence bound exceeds this")
    elimination_beta: float = option(2.0, "confidence width multiplier beta")
    elimination_fit_every: int = option(100, "updates between refits of the elimination bandit")
    elimination_samples: int = option(50_000, "newest replayed transitions the bandit is fitted on")
    elimination_balance: bool = option(True, "weight each action's valid and invalid outcomes equally in the BCE")


class LinearEliminationBandit:
    """Per-action regularised least squares on features, with confidence bounds."""

    def __init__(self, n_actions: int, feature_dim: int, lam: float, threshold: float, beta: float,
                 device: torch.device) -> None:
        if lam <= 0.0:
            raise ValueError(f"elimination_lambda must be > 0, got {lam}")
        if beta < 0.0:
            raise ValueError(f"elimination_beta must be >= 0, got {beta}")
        self.n_actions = n_actions
        self.lam = lam
        self.threshold = threshold
        self.beta = beta
        dim = feature_dim + 1
        self.inverse_gram = torch.eye(dim, device=device).repeat(n_actions, 1, 1) / lam
        self.theta = torch.zeros(n_actions, dim, device=device)
        self.fitted = False

    @staticmethod
    def _with_bias(features: torch.Tensor) -> torch.Tensor:
        return torch.cat([features, torch.ones_like(features[:, :1])], 1)

    def fit(self, features: torch.Tensor, actions: torch.Tensor, invalid: torch.Tensor) -> None:
        """Refit every action's regression from ``features`` (M, d) of transitions that
        took ``actions`` (M,) and got the signal ``invalid`` (M,)."""
        phi = self._with_bias(features.float())
        dim = phi.shape[1]
        gram = self.lam * torch.eye(dim, device=phi.device).repeat(self.n_actions, 1, 1)
        response = torch.zeros(self.n_actions, dim, device=phi.device)
        for start in range(0, len(phi), BANDIT_CHUNK):
            chunk = phi[start : start + BANDIT_CHUNK]
            taken = actions[start : start + BANDIT_CHUNK]
            outer = (chunk[:, :, None] * chunk[:, None, :]).flatten(1)
            gram.view(self.n_actions, -1).index_add_(0, taken, outer)
            response.index_add_(0, taken, chunk * invalid[start : start + BANDIT_CHUNK, None].float())
        self.inverse_gram = torch.linalg.inv(gram)
        self.theta = torch.einsum("aij,aj->ai", self.inverse_gram, response)
        self.fitted = True

    def admissible(self, features: torch.Tensor) -> torch.Tensor:
        """Actions not eliminated in each state, (B, n_actions) bool; never empty."""
        phi = self._with_bias(features.float())
        predicted = phi @ self.theta.T
        spread = torch.einsum("bi,aij,bj->ba", phi, self.inverse_gram, phi).clamp_min(0.0)
        lower_bound = predicted - torch.sqrt(self.beta * spread)
        keep = lower_bound <= self.threshold
        # If every action looks invalid, keep the one that looks least so.
        least_invalid = F.one_hot(lower_bound.argmin(1), self.n_actions).bool()
        return torch.where(keep.any(1, keepdim=True), keep, least_invalid)

    def state_dict(self) -> dict[str, Any]:
        return {"inverse_gram": self.inverse_gram, "theta": self.theta, "fitted": self.fitted}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inverse_gram = state["inverse_gram"].to(self.theta.device)
        self.theta = state["theta"].to(self.theta.device)
        self.fitted = bool(state["fitted"])


class AEDQN(DQN):
    """DQN whose action choices and targets skip the actions the bandit eliminates."""

    config: AEDQNConfig

    def __init__(self, config: AEDQNConfig, obs_dim: int, n_actions: int, num_streams: int, total_steps: int,
                 total_updates: int, device: torch.device | str = "cpu", seed: int = 0) -> None:
        if config.elimination_fit_every < 1:
            raise ValueError(f"elimination_fit_every must be >= 1, got {config.elimination_fit_every}")
        if config.elimination_samples < 1:
            raise ValueError(f"elimination_samples must be >= 1, got {config.elimination_samples}")
        self.elimination_network = QNetwork(obs_dim, n_actions, config.elimination_hidden_sizes).to(device)
        super().__init__(config, obs_dim, n_actions, num_streams, total_steps, total_updates, device, seed)
        # The bandit's regressions hold for the features it was fitted on, so
        # elimination reads a copy of the AEN frozen at each refit.
        self.fitted_features = make_target(self.elimination_network)
        self.mean_admissible = float(n_actions)
        # Outcomes stored per action, [valid, invalid], starting from one of each so
        # that an outcome not seen yet gets a finite weight.
        self.outcome_counts = torch.ones(n_actions, 2, device=self.device)
        self.bandit = LinearEliminationBandit(
            n_actions, config.elimination_hidden_sizes[-1], config.elimination_lambda,
            config.elimination_threshold, config.elimination_beta, self.device,
        )

    def networks(self) -> dict[str, nn.Module]:
        return {"q": self.q_network, "elimination": self.elimination_network}

    def replay_fields(self) -> dict[str, Field]:
        return {**super().replay_fields(), "invalid_action": Field((), torch.bool)}

    def stream_transition(self, transition: Tensors) -> dict[str, torch.Tensor]:
        row = {**super().stream_transition(transition), "invalid_action": transition["invalid_action"].flatten()}
        self.outcome_counts.index_put_((row["action"], row["invalid_action"].long()),
                                       torch.ones_like(row["action"], dtype=torch.float), accumulate=True)
        return row

    def allowed_actions(self, observation: torch.Tensor, env_mask: torch.Tensor | None) -> torch.Tensor | None:
        allowed = super().allowed_actions(observation, env_mask)
        if not self.bandit.fitted:
            return allowed
        admissible = self.bandit.admissible(self.fitted_features.features(observation))
        if allowed is None:
            return admissible
        both = admissible & allowed
        return torch.where(both.any(1, keepdim=True), both, allowed)

    @torch.no_grad()
    def fit_bandit(self) -> None:
        """Refit the elimination bandit on the newest replayed transitions with the current AEN."""
        batch = self.replay.recent(("observation", "action", "invalid_action"), self.config.elimination_samples)
        hard_update(self.fitted_features, self.elimination_network)
        features = self.fitted_features.features(batch["observation"])
        self.bandit.fit(features, batch["action"], batch["invalid_action"])
        self.mean_admissible = float(self.bandit.admissible(features).sum(1).float().mean())

    def update(self) -> dict[str, Any]:
        if self.engine.updates % self.config.elimination_fit_every == 0:
            self.fit_bandit()
        return {**super().update(), "admissible_actions": self.mean_admissible}

    def loss(self, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        td_loss, extras = super().loss(batch)
        logits = self.elimination_network(batch["observation"]).gather(1, batch["action"][:, None]).squeeze(1)
        invalid = batch["invalid_action"]
        per_sample = F.binary_cross_entropy_with_logits(logits.float(), invalid.float(), reduction="none")
        if self.config.elimination_balance:
            counts = self.outcome_counts[batch["action"]]
            weights = counts.sum(1) / (2.0 * counts.gather(1, invalid.long()[:, None]).squeeze(1))
            elimination_loss = (weights * per_sample).sum() / weights.sum()
        else:
            elimination_loss = per_sample.mean()
        return td_loss + elimination_loss, {
            **extras, "td_loss": td_loss.detach(), "elimination_loss": elimination_loss.detach(),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "fitted_features": self.fitted_features.state_dict(),
            "bandit": self.bandit.state_dict(),
            "outcome_counts": self.outcome_counts,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.fitted_features.load_state_dict(state["fitted_features"])
        self.bandit.load_state_dict(state["bandit"])
        self.outcome_counts = state["outcome_counts"].to(self.device)
