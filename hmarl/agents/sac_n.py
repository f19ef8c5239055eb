"""SAC-N (An et al., 2021) and its large-batch form LB-SAC (Nikulin et al., 2022).

Soft actor-critic with ``N`` critics held as one vectorised ensemble. Both the
bootstrapped target and the actor's objective read the minimum over the members,
which penalises actions the members disagree on: offline, these are the actions the
dataset does not cover. One update, on one sampled batch, runs in EDAC's order:

1. temperature: ``L(alpha) = -log(alpha) (log pi(a|s) + target_entropy)``;
2. actor: ``L(pi) = alpha log pi(a|s) - min_i Q_i(s, a)``;
3. critics: ``sum_i (Q_i(s, a) - y)^2`` with
   ``y = r + gamma (1 - terminated) (min_i Qbar_i(s', a') - alpha log pi(a'|s'))``,
   plus, with ``eta > 0``, EDAC's penalty on aligned action gradients of the members;
4. Polyak update of the target critics.

LB-SAC is the same algorithm with batch 10,000 and the learning rate scaled by the
square root of the batch from 3e-4 at batch 256 (:meth:`SACNConfig.lb_sac`), which
lets a much smaller ensemble reach the same scores in fewer updates.

It learns offline from a dataset loaded into the replay once (:meth:`SACN.load_dataset`)
or online through the shared training loop (``act``/``store``/``update``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hmarl.core import (
    TARGET_UPDATES,
    EngineConfig,
    EnsembleMLP,
    Field,
    ReplayBuffer,
    RowLoss,
    SamplerConfig,
    SelectionConfig,
    UpdateEngine,
    option,
)
from hmarl.core.sparse import SparseConfig
from hmarl.data import OfflineDataset
from hmarl.nets import trunk

Tensors = Mapping[str, torch.Tensor]
LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0


@dataclass
class SACNConfig(SparseConfig, EngineConfig, SamplerConfig, SelectionConfig):
    """SAC-N's options on top of the update engine's (defaults: the reference's SAC-N)."""

    max_grad_norm: float = option(0.0, "clip the global gradient norm to this (0 disables, as in SAC-N)")
    bf16: bool = option(False, "bf16 autocast for the losses on CUDA (SAC-N/LB-SAC train in fp32)")
    target_update: str = option(
        "polyak", "target critics: polyak every update, or hard copy every period", choices=TARGET_UPDATES
    )
    tau: float = option(5e-3, "Polyak coefficient for the target critics")
    gamma: float = option(0.99, "discount factor")
    ensemble_size: int = option(10, "number of critics N")
    hidden_sizes: tuple[int, ...] = option((256, 256, 256), "hidden layer widths of the actor and of each critic")
    eta: float = option(0.0, "weight of EDAC's ensemble diversity term (0 disables it)")
    target_entropy: float = option(float("nan"), "entropy the temperature aims for (nan: -action_dim)")
    initial_alpha: float = option(1.0, "initial entropy temperature")
    buffer_size: int = option(1_000_000, "replay capacity in transitions (online)")
    random_steps: int = option(0, "environment steps acted uniformly at random before the policy acts (online)")

    @classmethod
    def lb_sac(cls, **overrides: Any) -> SACNConfig:
        """LB-SAC: batch 10,000 and the sqrt rule from lr 3e-4 at batch 256."""
        return cls(**{"batch_size": 10_000, "lr_scaling": "sqrt", "lr": 3e-4, "base_batch_size": 256, **overrides})


class TanhGaussianActor(nn.Module):
    """A Gaussian policy squashed by tanh into the action box ``[low, high]``.

    ``log_prob`` is the density of the squashed action in the tanh space ``[-1, 1]``
    (the box's constant Jacobian is left out, as in the reference, so the target
    entropy ``-action_dim`` means the same for every box).
    """

    # Buffers (register_buffer below), declared for type checkers.
    action_low: torch.Tensor
    action_high: torch.Tensor
    action_center: torch.Tensor
    action_scale: torch.Tensor

    def __init__(
        self, obs_dim: int, action_low: Sequence[float], action_high: Sequence[float], hidden_sizes: Sequence[int]
    ) -> None:
        super().__init__()
        action_dim = len(action_low)
        self.trunk = trunk(obs_dim, hidden_sizes)
        self.mean = nn.Linear(hidden_sizes[-1], action_dim)
        self.log_std = nn.Linear(hidden_sizes[-1], action_dim)
        low = torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.as_tensor(action_high, dtype=torch.float32)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)
        self.register_buffer("action_center", (high + low) / 2)
        self.register_buffer("action_scale", (high - low) / 2)

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """An action in the box and its log-probability, each for every row of ``obs``."""
        hidden = self.trunk(obs)
        mean = self.mean(hidden)
        log_std = self.log_std(hidden).clamp(LOG_STD_MIN, LOG_STD_MAX)
        std = log_std.exp()
        pre_tanh = mean if deterministic else mean + std * torch.randn_like(mean)
        gaussian_log_prob = (-0.5 * ((pre_tanh - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log(1 - tanh(u)^2) written without tanh, exact where tanh saturates.
        log_jacobian = (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)
        action = self.action_center + self.action_scale * torch.tanh(pre_tanh)
        # Rounding in center + scale * tanh can step one ulp outside the box.
        action = torch.minimum(torch.maximum(action, self.action_low), self.action_high)
        return action, gaussian_log_prob - log_jacobian


class EnsembleCritic(nn.Module):
    """``N`` Q-functions ``Q_i(s, a)`` run as one vectorised ensemble; returns ``(N, B)``."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: Sequence[int], ensemble_size: int) -> None:
        super().__init__()
        self.ensemble_size = ensemble_size
        self.q = EnsembleMLP(obs_dim + action_dim, hidden_sizes, 1, ensemble_size)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``obs``/``action`` are ``(B, ·)`` (shared by all members) or ``(N, B, ·)``."""
        return self.q(torch.cat([obs, action], dim=-1)).squeeze(-1)


class Temperature(nn.Module):
    """The entropy temperature, learned as ``log(alpha)`` to stay positive."""

    def __init__(self, initial_alpha: float) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(math.log(initial_alpha), dtype=torch.float32))

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()


def _check_config(config: SACNConfig) -> None:
    if config.ensemble_size < 1:
        raise ValueError(f"ensemble_size must be >= 1, got {config.ensemble_size}")
    if config.eta < 0:
        raise ValueError(f"eta must be >= 0 (0 disables EDAC's diversity term), got {config.eta}")
    if config.eta > 0 and config.ensemble_size < 2:
        raise ValueError(f"eta > 0 needs ensemble_size >= 2, got {config.ensemble_size}")
    if config.eta > 0 and config.selection != "none":
        raise ValueError(
            f"selection={config.selection!r} scores rows without gradients, which EDAC's diversity term "
            "(eta > 0) needs; use selection='none' or eta=0"
        )
    if not 0.0 <= config.gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {config.gamma}")
    if not config.initial_alpha > 0:
        raise ValueError(f"initial_alpha must be > 0, got {config.initial_alpha}")
    if not config.hidden_sizes or min(config.hidden_sizes) < 1:
        raise ValueError(f"hidden_sizes must name at least one positive width, got {config.hidden_sizes}")
    if config.random_steps < 0:
        raise ValueError(f"random_steps must be >= 0, got {config.random_steps}")


class SACN:
    """SAC-N over ``num_streams`` online transition streams, or over an offline dataset.

    Observations are ``(B, 1, obs_dim)`` and actions ``(B, 1, action_dim)``, the
    single-agent case of the shared loop's batched face.
    """

    def __init__(
        self,
        config: SACNConfig,
        obs_dim: int,
        action_low: Sequence[float],
        action_high: Sequence[float],
        total_updates: int,
        num_streams: int = 1,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        _check_config(config)
        if len(action_low) == 0 or len(action_low) != len(action_high):
            raise ValueError(
                f"action_low and action_high must be non-empty and of one length, got {action_low} and {action_high}"
            )
        if not all(low < high for low, high in zip(action_low, action_high, strict=True)):
            raise ValueError(f"action_low {list(action_low)} must be below action_high {list(action_high)}")
        self.config = config
        self.obs_dim = obs_dim
        self.action_dim = len(action_low)
        self.device = torch.device(device)
        self.num_streams = num_streams
        self.seed = seed
        self.target_entropy = -float(self.action_dim) if math.isnan(config.target_entropy) else config.target_entropy
        self.actor = TanhGaussianActor(obs_dim, action_low, action_high, config.hidden_sizes).to(self.device)
        self.critic = EnsembleCritic(obs_dim, self.action_dim, config.hidden_sizes, config.ensemble_size)
        self.critic.to(self.device)
        self.temperature = Temperature(config.initial_alpha).to(self.device)
        # One engine per loss, since each loss steps its own parameters in turn; all
        # three share the configuration, so LB-SAC's sqrt rule scales every lr.
        self.temperature_engine = UpdateEngine({"temperature": self.temperature}, config, total_updates, seed=seed)
        self.actor_engine = UpdateEngine({"actor": self.actor}, config, total_updates, seed=seed)
        self.critic_engine = UpdateEngine({"critic": self.critic}, config, total_updates, targets=["critic"], seed=seed)
        # The critics choose the rows (their selection stage, if any); the others read them.
        self.temperature_engine.selection = self.actor_engine.selection = None
        self.target_critic = self.critic_engine.targets["critic"]
        self.total_updates = total_updates
        self.replay: ReplayBuffer | None = None
        self.offline = False
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def replay_fields(self) -> dict[str, Field]:
        return {
            "observation": Field((self.obs_dim,)),
            "action": Field((self.action_dim,)),
            "reward": Field(()),
            "next_observation": Field((self.obs_dim,)),
            "terminated": Field((), torch.bool),
            "truncated": Field((), torch.bool),
        }

    def _online_replay(self) -> ReplayBuffer:
        if self.replay is None:
            if self.config.batch_size > self.config.buffer_size:
                raise ValueError(f"batch_size={self.config.batch_size} is larger than buffer_size={self.config.buffer_size}")
            self.replay = ReplayBuffer(
                self.replay_fields(),
                self.config.buffer_size,
                self.num_streams,
                self.device,
                gamma=self.config.gamma,
                seed=self.seed,
                sampler=self.config,
                total_draws=self.total_updates,
            )
        return self.replay

    def load_dataset(self, dataset: OfflineDataset) -> None:
        """Put every transition of ``dataset`` on the device as the replay to learn from.

        Each transition is one stream of one step: with one-step targets the replay
        needs no order, and the whole dataset is copied to the device in one call.
        """
        if (dataset.obs_dim, dataset.action_dim) != (self.obs_dim, self.action_dim):
            raise ValueError(
                f"dataset has obs_dim={dataset.obs_dim}, action_dim={dataset.action_dim} but the agent was "
                f"built for obs_dim={self.obs_dim}, action_dim={self.action_dim}"
            )
        if self.config.batch_size > len(dataset):
            raise ValueError(f"batch_size={self.config.batch_size} is larger than the dataset ({len(dataset)})")
        self.replay = ReplayBuffer(
            self.replay_fields(),
            len(dataset),
            len(dataset),
            self.device,
            gamma=self.config.gamma,
            seed=self.seed,
            sampler=self.config,
            total_draws=self.total_updates,
        )
        self.replay.add(
            {
                "observation": dataset.observations,
                "action": dataset.actions,
                "reward": dataset.rewards,
                "next_observation": dataset.next_observations,
                "terminated": dataset.terminals,
                "truncated": dataset.timeouts,
            }
        )
        self.offline = True

    @torch.no_grad()
    def act(self, obs: Tensors, global_step: int) -> torch.Tensor:
        """Exploring actions ``(B, 1, action_dim)``: uniform before ``random_steps``, then sampled."""
        observation = obs["observation"]
        if global_step < self.config.random_steps:
            unit = torch.rand((*observation.shape[:-1], self.action_dim), generator=self.generator, device=self.device)
            return self.actor.action_low + unit * (self.actor.action_high - self.actor.action_low)
        return self.act_sampled(obs)

    @torch.no_grad()
    def act_sampled(self, obs: Tensors) -> torch.Tensor:
        """Actions sampled from the policy: ``(B, 1, action_dim)``."""
        return self.actor(obs["observation"])[0]

    @torch.no_grad()
    def act_greedy(self, obs: Tensors) -> torch.Tensor:
        """The mean action, squashed: ``(B, 1, action_dim)``."""
        return self.actor(obs["observation"], deterministic=True)[0]

    def store(self, transition: Tensors) -> None:
        replay = self._online_replay()
        replay.add(
            {
                "observation": transition["observation"][:, 0],
                "action": transition["action"][:, 0],
                "reward": transition["reward"][:, 0],
                "next_observation": transition["next_observation"][:, 0],
                "terminated": transition["terminated"],
                "truncated": transition["truncated"],
            }
        )

    def can_update(self) -> bool:
        return self.replay is not None and len(self.replay) >= self.config.batch_size

    def critic_target(self, batch: Tensors, alpha: torch.Tensor) -> torch.Tensor:
        """``r + gamma (1 - terminated) (min_i Qbar_i(s', a') - alpha log pi(a'|s'))``, ``a' ~ pi``."""
        with torch.no_grad():
            next_action, next_log_prob = self.actor(batch["next_observation"])
            next_q = self.target_critic(batch["next_observation"], next_action).min(0).values
            bootstrap = next_q - alpha * next_log_prob
            return batch["reward"] + batch["discount"] * (~batch["terminated"]) * bootstrap

    def temperature_loss(self, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad():
            _, log_prob = self.actor(batch["observation"])
        loss = -(self.temperature.log_alpha * (log_prob + self.target_entropy)).mean()
        return loss, {"entropy": -log_prob.mean()}

    def actor_loss(self, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        action, log_prob = self.actor(batch["observation"])
        # The critics only score the actor's actions here: they are called with
        # detached parameters so this backward pass computes no critic gradients.
        frozen = {name: param.detach() for name, param in self.critic.named_parameters()}
        q_values = torch.func.functional_call(self.critic, frozen, (batch["observation"], action))
        loss = (self.temperature.alpha * log_prob - q_values.min(0).values).mean()
        extras = {"q_ensemble_std": q_values.detach().std(0).mean()} if self.config.ensemble_size > 1 else {}
        return loss, extras

    def critic_loss(self, batch: Tensors) -> tuple[RowLoss, dict[str, torch.Tensor]]:
        target = self.critic_target(batch, self.temperature.alpha)
        observation, action = batch["observation"], batch["action"]
        if self.config.eta > 0:
            members = self.config.ensemble_size
            observation = observation.unsqueeze(0).expand(members, -1, -1)
            action = action.unsqueeze(0).expand(members, -1, -1).clone().requires_grad_(True)
        q_values = self.critic(observation, action)
        # Summed over members, averaged over the batch: each member fits the target alone.
        # A row's score is the members' mean absolute TD error.
        rows = RowLoss(((q_values - target) ** 2).T, scores=(q_values.detach() - target).abs().mean(0), normalizer=len(target))
        extras = {"q_mean": q_values.mean().detach(), "target_mean": target.mean()}
        if self.config.eta > 0:
            diversity = self.diversity_loss(q_values, action)
            rows.auxiliary = self.config.eta * diversity
            extras["diversity_loss"] = diversity.detach()
        return rows, extras

    def diversity_loss(self, q_values: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """EDAC's term: mean over the batch of the summed pairwise cosine similarities of
        the members' action gradients ``grad_a Q_i``, divided by ``N - 1``."""
        gradients = torch.autograd.grad(q_values.sum(), action, create_graph=True)[0]
        gradients = gradients / (gradients.norm(dim=-1, keepdim=True) + 1e-10)
        gradients = gradients.transpose(0, 1)
        similarity = gradients @ gradients.transpose(1, 2)
        off_diagonal = similarity.sum((1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(1)
        return off_diagonal.mean() / (self.config.ensemble_size - 1)

    def update(self) -> dict[str, Any]:
        """One SAC-N update on one sampled batch: temperature, actor, critics, targets."""
        if self.replay is None:
            raise RuntimeError("update() needs transitions: call store() or load_dataset() first")
        sample = self.critic_engine.draw(self.critic_loss, self.replay)
        metrics: dict[str, Any] = {}
        # The critics' rows (chosen by their selection stage, if any) carry the sampler's
        # weights and return their scores; the temperature and the actor read the same
        # rows unweighted.
        for name, engine, loss_fn, rows in (
            ("alpha", self.temperature_engine, self.temperature_loss, sample.batch),
            ("actor", self.actor_engine, self.actor_loss, sample.batch),
            ("critic", self.critic_engine, self.critic_loss, sample),
        ):
            result = engine.update(loss_fn, rows)
            metrics.update({f"{name}_{key}": value for key, value in result.items() if key != "samples_per_second"})
        metrics["alpha"] = self.temperature.alpha
        metrics["loss"] = metrics["critic_loss"]
        return metrics

    @torch.no_grad()
    def policy_distance(self, engine: str, rows: Tensors) -> torch.Tensor:
        """The dynamic buffer's distance (the reference's): half the mean squared difference
        between today's deterministic action and the stored one, both scaled to [-1, 1]."""
        action, _ = self.actor(rows["observation"], deterministic=True)
        scale = self.actor.action_scale
        difference = (action - rows["action"]) / scale
        return (difference**2).mean() / 2

    def engines(self) -> dict[str, UpdateEngine]:
        """The update engines of this learner, by name (for hooks and selection stages)."""
        return {"temperature": self.temperature_engine, "actor": self.actor_engine, "critic": self.critic_engine}

    def state_dict(self) -> dict[str, Any]:
        replay = None
        if self.replay is not None:
            replay = self.replay.state_dict()
            if self.offline:
                # The dataset is reloaded from its file; only the sampling position travels.
                replay = {**replay, "storage": {}}
        return {
            "temperature": self.temperature_engine.state_dict(),
            "actor": self.actor_engine.state_dict(),
            "critic": self.critic_engine.state_dict(),
            "replay": replay,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.temperature_engine.load_state_dict(state["temperature"])
        self.actor_engine.load_state_dict(state["actor"])
        self.critic_engine.load_state_dict(state["critic"])
        self.generator.set_state(state["generator"])
        replay = state["replay"]
        if replay is None:
            return
        if self.offline != (not replay["storage"]):
            raise ValueError(
                "offline SAC-N checkpoints resume after load_dataset() and online ones without it; "
                "this checkpoint and this agent differ"
            )
        target = self.replay if self.offline else self._online_replay()
        if target is None:
            raise ValueError("an offline SAC-N agent resumes after load_dataset(); this one has no dataset")
        target.load_state_dict(replay)
