"""DQN (Mnih et al., 2015) with double Q-learning, an optional dueling head and n-step
returns, acting for all environment copies and agents in one forward pass.

Agents of a multi-agent environment learn independently with one shared network:
each (copy, agent) pair is one transition stream of the replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hmarl.core import (
    EngineConfig,
    Field,
    ReplayBuffer,
    RowLoss,
    SamplerConfig,
    SelectionConfig,
    UpdateEngine,
    option,
)
from hmarl.core.sparse import SparseConfig
from hmarl.nets import QNetwork
from hmarl.qlearning import EpsilonConfig, bootstrap_value, check_epsilons, linear_decay, masked_random_choice

Tensors = Mapping[str, torch.Tensor]


@dataclass
class DQNConfig(SparseConfig, EngineConfig, SamplerConfig, SelectionConfig, EpsilonConfig):
    """DQN's own options on top of the update engine's."""

    lr: float = option(5e-4, "learning rate at --base-batch-size (before --lr-scaling)")
    batch_size: int = option(128, "transitions per update")
    gamma: float = option(0.99, "discount factor")
    n_step: int = option(1, "steps summed in the bootstrapped return")
    buffer_size: int = option(100_000, "replay capacity in transitions")
    hidden_sizes: tuple[int, ...] = option((256, 256), "hidden layer widths of the Q-network")
    dueling: bool = option(False, "dueling head: Q = V + A - mean(A)")
    double_q: bool = option(True, "double Q-learning: the online network picks the target's action")
    use_action_mask: bool = option(True, "honour the environment's action mask in acting and in targets")


class DQN:
    """Double DQN over ``num_streams = num_envs * n_agents`` transition streams."""

    def __init__(
        self,
        config: DQNConfig,
        obs_dim: int,
        n_actions: int,
        num_streams: int,
        total_steps: int,
        total_updates: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if config.batch_size > config.buffer_size:
            raise ValueError(f"batch_size={config.batch_size} is larger than buffer_size={config.buffer_size}")
        check_epsilons(config.epsilon_start, config.epsilon_end)
        self.config = config
        self.obs_dim = obs_dim
        self.n_actions = n_actions
        self.device = torch.device(device)
        self.decay_steps = max(config.exploration_fraction * total_steps, 1.0)
        self.q_network = QNetwork(obs_dim, n_actions, config.hidden_sizes, config.dueling).to(self.device)
        self.engine = UpdateEngine(self.networks(), config, total_updates, targets=["q"], seed=seed)
        self.target_network = self.engine.targets["q"]
        self.replay = ReplayBuffer(
            self.replay_fields(),
            capacity=config.buffer_size,
            num_streams=num_streams,
            device=self.device,
            n_step=config.n_step,
            gamma=config.gamma,
            seed=seed,
            sampler=config,
            total_draws=total_updates,
        )
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed + 1)

    def networks(self) -> dict[str, nn.Module]:
        """The modules the engine trains, by name."""
        return {"q": self.q_network}

    def engines(self) -> dict[str, UpdateEngine]:
        """The update engines of this learner, by name (for hooks and selection stages)."""
        return {"q": self.engine}

    def replay_fields(self) -> dict[str, Field]:
        fields = {
            "observation": Field((self.obs_dim,)),
            "action": Field((), torch.long),
            "reward": Field(()),
            "next_observation": Field((self.obs_dim,)),
            "terminated": Field((), torch.bool),
            "truncated": Field((), torch.bool),
        }
        if self.config.use_action_mask:
            fields["next_action_mask"] = Field((self.n_actions,), torch.bool)
        return fields

    # --- acting --------------------------------------------------------------------
    def epsilon(self, global_step: int) -> float:
        return linear_decay(global_step, self.decay_steps, self.config.epsilon_start, self.config.epsilon_end)

    def allowed_actions(self, observation: torch.Tensor, env_mask: torch.Tensor | None) -> torch.Tensor | None:
        """Which actions may be chosen in each state (None: all of them)."""
        return env_mask if self.config.use_action_mask else None

    def _greedy(self, observation: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        q_values = self.q_network(observation)
        if allowed is not None:
            q_values = q_values.masked_fill(~allowed, -torch.inf)
        return q_values.argmax(-1)

    @torch.no_grad()
    def act_greedy(self, obs: Tensors) -> torch.Tensor:
        observation = obs["observation"].flatten(0, 1)
        allowed = self.allowed_actions(observation, obs["action_mask"].flatten(0, 1))
        return self._greedy(observation, allowed).view(obs["observation"].shape[:2])

    @torch.no_grad()
    def act(self, obs: Tensors, global_step: int) -> torch.Tensor:
        observation = obs["observation"].flatten(0, 1)
        allowed = self.allowed_actions(observation, obs["action_mask"].flatten(0, 1))
        greedy = self._greedy(observation, allowed)
        streams = observation.shape[0]
        if allowed is None:
            allowed = torch.ones((streams, self.n_actions), dtype=torch.bool, device=self.device)
        random = masked_random_choice(allowed, self.generator)
        explore = torch.rand(streams, generator=self.generator, device=self.device) < self.epsilon(global_step)
        actions = torch.where(explore, random, greedy)
        return actions.view(obs["observation"].shape[:2])

    # --- learning ------------------------------------------------------------------
    def store(self, transition: Tensors) -> None:
        self.replay.add(self.stream_transition(transition))

    def stream_transition(self, transition: Tensors) -> dict[str, torch.Tensor]:
        """The replay's fields from a batched step, one row per (copy, agent) stream."""
        num_envs, n_agents = transition["action"].shape

        def per_stream(flag: torch.Tensor) -> torch.Tensor:
            return flag[:, None].expand(num_envs, n_agents).reshape(-1)

        row = {
            "observation": transition["observation"].flatten(0, 1),
            "action": transition["action"].flatten(),
            "reward": transition["reward"].flatten(),
            "next_observation": transition["next_observation"].flatten(0, 1),
            "terminated": per_stream(transition["terminated"]),
            "truncated": per_stream(transition["truncated"]),
        }
        if self.config.use_action_mask:
            row["next_action_mask"] = transition["next_action_mask"].flatten(0, 1)
        return row

    def can_update(self) -> bool:
        return len(self.replay) >= self.config.batch_size

    def update(self) -> dict[str, Any]:
        return self.engine.update(self.loss, self.replay)

    def td_target(self, batch: Tensors) -> torch.Tensor:
        next_observation = batch["next_observation"]
        with torch.no_grad():
            next_target_q = self.target_network(next_observation)
            selector = self.q_network(next_observation) if self.config.double_q else next_target_q
            allowed = self.allowed_actions(next_observation, batch.get("next_action_mask"))
            next_q = bootstrap_value(next_target_q, selector, allowed)
            not_terminal = (~batch["terminated"]).to(next_q.dtype)
            return batch["reward"] + batch["discount"] * not_terminal * next_q

    def loss(self, batch: Tensors) -> tuple[RowLoss, dict[str, torch.Tensor]]:
        """Each row's Huber TD loss; its score is the absolute TD error."""
        q_taken = self.q_network(batch["observation"]).gather(1, batch["action"][:, None]).squeeze(1)
        target = self.td_target(batch).float()
        td_loss = F.smooth_l1_loss(q_taken.float(), target, reduction="none")
        return RowLoss(td_loss, scores=(target - q_taken.detach().float()).abs()), {"q_mean": q_taken.detach().mean()}

    @torch.no_grad()
    def policy_distance(self, engine: str, rows: Tensors) -> torch.Tensor:
        """The dynamic buffer's distance for discrete actions: the share of stored actions
        that differ from today's greedy action in the same state (over every action; the
        replay keeps no mask of the state an action was taken in)."""
        greedy = self.q_network(rows["observation"].float()).argmax(-1)
        return (greedy != rows["action"]).float().mean()

    # --- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine.state_dict(),
            "replay": self.replay.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.engine.load_state_dict(state["engine"])
        self.replay.load_state_dict(state["replay"])
        self.generator.set_state(state["generator"])
