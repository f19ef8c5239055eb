"""Action elimination (Zahavy et al., 2018): learn which actions would have no effect,
and leave them out. Used by AE-DQN and by the hierarchical learners' low level.

An action-elimination network (AEN) is trained with binary cross-entropy to predict the
environment's elimination signal (``invalid_action``: the taken action had no effect).
A linear contextual bandit on the AEN's features (the input of its last layer) then
eliminates action ``a`` in state ``s`` when it is confidently invalid:

    theta_a . phi(s) - sqrt(beta * phi(s)^T A_a^{-1} phi(s)) > threshold

with ``A_a = lambda I + sum phi phi^T`` and ``theta_a = A_a^{-1} sum phi e`` over a
uniform sample (reservoir) of all the transitions that took ``a``.

Three choices make elimination work when some actions are valid in few states (trash
collection's pick and place), not only when some are never valid:

* **Reservoir.** An eliminated action is no longer tried; a window of recent
  transitions would lose the evidence against it, readmit it and eliminate it again
  in cycles. Each action keeps a uniform sample of its whole history instead.
* **Balance.** By default each action's valid and invalid outcomes weigh equally, in
  the BCE and in the least squares: a rare valid outcome the features cannot yet tell
  apart leaves the estimate near 0.5, below the threshold, instead of eliminating the
  action in exactly the states where it works.
* **Features.** For grid observations (``obs_grid``) the AEN is convolutional, pooled
  over the cells (:class:`hmarl.nets.GridNetwork`): "standing on trash" is the same
  feature on every cell, so a few valid picks teach it everywhere. The observation's
  flat entries also reach the features unchanged, so a context never tried with an
  action (carrying trash, for place) keeps a wide confidence bound until it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from hmarl.core import hard_update, make_target, option
from hmarl.nets import GridNetwork, QNetwork

ELIMINATION_NETWORKS = ("auto", "mlp", "conv")

# Features of this many transitions at a time go into the bandit's statistics, which
# bounds the memory of the outer products to chunk * (features + 1)^2 floats.
BANDIT_CHUNK = 2048


@dataclass
class EliminationConfig:
    """Options of the elimination component (AE-DQN's, and the low level's with --elimination)."""

    # A narrow last layer keeps the bandit's confidence widths, which grow with the
    # feature dimension, small enough to eliminate after a few hundred tries per action.
    elimination_hidden_sizes: tuple[int, ...] = option((64, 8), "hidden layer widths of the elimination network")
    elimination_network: str = option(
        "auto",
        "elimination network: mlp, conv (convolutions over a grid observation, pooled over its cells), "
        "or auto (conv when the environment's observation is a grid, else mlp)",
    )
    elimination_channels: tuple[int, ...] = option((16, 16), "3x3 convolution channels of the conv elimination network")
    elimination_lambda: float = option(0.1, "ridge regularisation lambda of the per-action least squares")
    elimination_threshold: float = option(0.6, "eliminate an action when its lower confidence bound exceeds this")
    elimination_beta: float = option(2.0, "confidence width multiplier beta")
    elimination_fit_every: int = option(100, "updates between refits of the elimination bandit")
    elimination_samples: int = option(
        512, "transitions per action the bandit is fitted on: a uniform sample of all that took the action"
    )
    elimination_balance: bool = option(
        True, "weight each action's valid and invalid outcomes equally in the BCE and the bandit's least squares"
    )


class ActionReservoir:
    """A uniform sample of at most ``size`` of the transitions that took each action.

    Reservoir sampling over each action's whole history: once the bandit eliminates an
    action it is no longer tried, and a window of recent transitions would soon hold no
    evidence on it, so it would be readmitted, retried and eliminated again in cycles.
    """

    def __init__(self, n_actions: int, size: int, obs_dim: int, device: torch.device, seed: int) -> None:
        self.size = size
        self.observation = torch.zeros(n_actions, size, obs_dim, device=device)
        self.invalid = torch.zeros(n_actions, size, dtype=torch.bool, device=device)
        self.seen = torch.zeros(n_actions, dtype=torch.long, device=device)
        self.generator = torch.Generator(device).manual_seed(seed)

    def add(self, observation: torch.Tensor, action: torch.Tensor, invalid: torch.Tensor) -> None:
        """Offer the transitions (M, obs_dim), (M,), (M,) to their actions' samples."""
        order = torch.argsort(action, stable=True)
        ordered = action[order]
        rank = torch.empty_like(action)
        rank[order] = torch.arange(len(action), device=action.device) - torch.searchsorted(ordered, ordered)
        # The n-th transition (from 0) that took an action replaces a uniform slot of
        # [0, n] when that slot is one of the sample's.
        index = self.seen[action] + rank
        draw = (torch.rand(len(action), generator=self.generator, device=action.device) * (index + 1)).long()
        slot = torch.where(index < self.size, index, draw)
        keep = slot < self.size
        self.observation[action[keep], slot[keep]] = observation[keep].to(self.observation.dtype)
        self.invalid[action[keep], slot[keep]] = invalid[keep]
        self.seen += torch.bincount(action, minlength=len(self.seen))

    def contents(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The stored observations, actions and signals, flat."""
        filled = torch.arange(self.size, device=self.seen.device) < self.seen[:, None]
        actions = torch.arange(len(self.seen), device=self.seen.device)[:, None].expand_as(filled)
        return self.observation[filled], actions[filled], self.invalid[filled]

    def state_dict(self) -> dict[str, Any]:
        return {
            "observation": self.observation,
            "invalid": self.invalid,
            "seen": self.seen,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.observation = state["observation"].to(self.observation.device)
        self.invalid = state["invalid"].to(self.invalid.device)
        self.seen = state["seen"].to(self.seen.device)
        self.generator.set_state(state["generator"])


class LinearEliminationBandit:
    """Per-action regularised least squares on features, with confidence bounds."""

    def __init__(
        self, n_actions: int, feature_dim: int, lam: float, threshold: float, beta: float, device: torch.device
    ) -> None:
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

    def fit(self, features: torch.Tensor, actions: torch.Tensor, invalid: torch.Tensor, balance: bool = False) -> None:
        """Refit every action's regression from ``features`` (M, d) of transitions that
        took ``actions`` (M,) and got the signal ``invalid`` (M,).

        With ``balance`` each action's valid and invalid transitions weigh equally
        (weights ``n_a / (2 n_a,outcome)``, 1 on average; 1 for an action only one
        outcome was seen of): a rare outcome the features
        cannot yet tell apart then leaves the estimate near 0.5, below the threshold,
        rather than near the common outcome's rate.
        """
        phi = self._with_bias(features.float())
        weights = torch.ones(len(phi), device=phi.device)
        if balance:
            counts = torch.zeros(self.n_actions, 2, device=phi.device)
            counts.index_put_((actions, invalid.long()), weights, accumulate=True)
            outcomes = (counts > 0).sum(1)
            weights = counts.sum(1)[actions] / (outcomes[actions] * counts[actions, invalid.long()])
        dim = phi.shape[1]
        gram = self.lam * torch.eye(dim, device=phi.device).repeat(self.n_actions, 1, 1)
        response = torch.zeros(self.n_actions, dim, device=phi.device)
        for start in range(0, len(phi), BANDIT_CHUNK):
            chunk = phi[start : start + BANDIT_CHUNK]
            taken = actions[start : start + BANDIT_CHUNK]
            weighted = chunk * weights[start : start + BANDIT_CHUNK, None]
            outer = (weighted[:, :, None] * chunk[:, None, :]).flatten(1)
            gram.view(self.n_actions, -1).index_add_(0, taken, outer)
            response.index_add_(0, taken, weighted * invalid[start : start + BANDIT_CHUNK, None].float())
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


def make_elimination_network(
    config: EliminationConfig, obs_dim: int, n_actions: int, obs_grid: tuple[int, ...]
) -> QNetwork | GridNetwork:
    """The AEN that ``config.elimination_network`` names, for observations with ``obs_grid``."""
    kind = config.elimination_network
    if kind not in ELIMINATION_NETWORKS:
        raise ValueError(f"elimination_network must be one of {', '.join(ELIMINATION_NETWORKS)}, got {kind!r}")
    if kind == "conv" and not obs_grid:
        raise ValueError(
            "elimination_network='conv' needs an environment whose observation is a grid; this one has none (use mlp or auto)"
        )
    if kind == "mlp" or not obs_grid:
        return QNetwork(obs_dim, n_actions, config.elimination_hidden_sizes)
    return GridNetwork(obs_dim, n_actions, obs_grid, config.elimination_channels, config.elimination_hidden_sizes)


def feature_dim(network: QNetwork | GridNetwork, obs_dim: int) -> int:
    """The width of ``network.features`` for observations of ``obs_dim`` entries."""
    with torch.no_grad():
        return network.features(torch.zeros(1, obs_dim, device=next(network.parameters()).device)).shape[-1]


class ActionElimination:
    """The AEN, its bandit, each action's reservoir and outcome counts, as one component.

    A learner adds :attr:`network` to the modules its engine trains, offers every stored
    transition to :meth:`observe`, adds :meth:`loss` to its loss (as the row loss's
    auxiliary term: it is supervised, not replay-weighted), calls :meth:`refit_due`
    before each update and narrows its allowed actions with :meth:`restrict`.
    """

    def __init__(
        self,
        config: EliminationConfig,
        obs_dim: int,
        n_actions: int,
        obs_grid: tuple[int, ...],
        device: torch.device,
        seed: int = 0,
    ) -> None:
        if config.elimination_fit_every < 1:
            raise ValueError(f"elimination_fit_every must be >= 1, got {config.elimination_fit_every}")
        if config.elimination_samples < 1:
            raise ValueError(f"elimination_samples must be >= 1, got {config.elimination_samples}")
        self.config = config
        self.device = device
        self.network = make_elimination_network(config, obs_dim, n_actions, obs_grid).to(device)
        # The bandit's regressions hold for the features it was fitted on, so
        # elimination reads a copy of the AEN frozen at each refit.
        self.fitted_features = make_target(self.network)
        self.mean_admissible = float(n_actions)
        # Outcomes stored per action, [valid, invalid], starting from one of each so
        # that an outcome not seen yet gets a finite weight.
        self.outcome_counts = torch.ones(n_actions, 2, device=device)
        self.reservoir = ActionReservoir(n_actions, config.elimination_samples, obs_dim, device, seed)
        self.bandit = LinearEliminationBandit(
            n_actions,
            feature_dim(self.network, obs_dim),
            config.elimination_lambda,
            config.elimination_threshold,
            config.elimination_beta,
            device,
        )

    def observe(self, observation: torch.Tensor, action: torch.Tensor, invalid: torch.Tensor) -> None:
        """Count the stored transitions' outcomes and offer them to the reservoirs."""
        self.outcome_counts.index_put_((action, invalid.long()), torch.ones_like(action, dtype=torch.float), accumulate=True)
        self.reservoir.add(observation, action, invalid)

    def restrict(self, allowed: torch.Tensor | None, observation: torch.Tensor) -> torch.Tensor | None:
        """``allowed`` without the eliminated actions (never empty where ``allowed`` is not)."""
        if not self.bandit.fitted:
            return allowed
        admissible = self.bandit.admissible(self.fitted_features.features(observation))
        if allowed is None:
            return admissible
        both = admissible & allowed
        return torch.where(both.any(-1, keepdim=True), both, allowed)

    def refit_due(self, updates: int, recent: Callable[[], torch.Tensor]) -> None:
        """Refit the bandit every ``elimination_fit_every`` updates; the observations
        ``recent()`` returns measure how many actions it leaves."""
        if updates % self.config.elimination_fit_every == 0:
            self.fit(recent())

    @torch.no_grad()
    def fit(self, recent: torch.Tensor) -> None:
        """Refit the bandit on each action's sample of transitions with the current AEN."""
        observation, action, invalid = self.reservoir.contents()
        hard_update(self.fitted_features, self.network)
        features = torch.cat([self.fitted_features.features(chunk) for chunk in observation.split(BANDIT_CHUNK)])
        self.bandit.fit(features, action, invalid, balance=self.config.elimination_balance)
        admissible = self.bandit.admissible(self.fitted_features.features(recent.float()))
        self.mean_admissible = float(admissible.sum(1).float().mean())

    def loss(self, observation: torch.Tensor, action: torch.Tensor, invalid: torch.Tensor) -> torch.Tensor:
        """The AEN's (balanced) binary cross-entropy on the signal of the actions taken."""
        logits = self.network(observation).gather(1, action[:, None]).squeeze(1)
        per_sample = F.binary_cross_entropy_with_logits(logits.float(), invalid.float(), reduction="none")
        if not self.config.elimination_balance:
            return per_sample.mean()
        counts = self.outcome_counts[action]
        weights = counts.sum(1) / (2.0 * counts.gather(1, invalid.long()[:, None]).squeeze(1))
        return (weights * per_sample).sum() / weights.sum()

    def state_dict(self) -> dict[str, Any]:
        return {
            "fitted_features": self.fitted_features.state_dict(),
            "bandit": self.bandit.state_dict(),
            "outcome_counts": self.outcome_counts,
            "reservoir": self.reservoir.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.fitted_features.load_state_dict(state["fitted_features"])
        self.bandit.load_state_dict(state["bandit"])
        self.outcome_counts = state["outcome_counts"].to(self.device)
        self.reservoir.load_state_dict(state["reservoir"])
