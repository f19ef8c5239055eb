"""QMIX (Rashid et al., 2018) over primitive actions: the flat cooperative baseline.

Each agent's Q over its primitives comes from one network shared by the agents (the
agent id is an input); the chosen values are mixed by a monotonic QMIX network on the
global state, ``Q_tot(s, a) = mix(Q_1(o_1, a_1) .. Q_N(o_N, a_N), s)``, regressed on
``R + gamma**n (1 - terminated) mix'(V_1 .. V_N, s')`` with ``V_i`` the target network's
value of the action the online network picks among the allowed ones (double Q). The team
reward ``R`` is the sum of the agents' rewards (``team_reward="sum"``, for individual
rewards) or their mean ("mean", for a reward every agent receives). Each environment
copy is one transition stream of the replay, holding the joint step of all its agents,
so n-step returns and every sampler apply unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from hmarl.core import (
    EngineConfig,
    Field,
    ReplayBuffer,
    RowLoss,
    SamplerConfig,
    SelectionConfig,
    UpdateEngine,
    check_choice,
    option,
)
from hmarl.nets import IndependentGoalQ, QMixer
from hmarl.qlearning import (
    EpsilonConfig,
    bootstrap_value,
    check_epsilons,
    linear_decay,
    masked_random_choice,
    some_allowed,
)

Tensors = Mapping[str, torch.Tensor]
TEAM_REWARDS = ("sum", "mean")


@dataclass
class QMIXConfig(EngineConfig, SamplerConfig, SelectionConfig, EpsilonConfig):
    """QMIX's own options on top of the update engine's and the sampler's."""

    lr: float = option(5e-4, "learning rate at --base-batch-size (before --lr-scaling)")
    batch_size: int = option(128, "joint transitions per update")
    gamma: float = option(0.99, "discount factor")
    n_step: int = option(1, "steps summed in the bootstrapped return")
    buffer_size: int = option(100_000, "replay capacity in joint transitions")
    hidden_sizes: tuple[int, ...] = option((128, 128), "hidden layer widths of the agents' Q network")
    mixer_embed: int = option(32, "width of the mixing network")
    team_reward: str = option(
        "sum",
        "the team reward the mixed value learns: the sum of the agents' rewards (individual rewards) or "
        "their mean (a reward every agent receives, counted once)",
        choices=TEAM_REWARDS,
    )
    double_q: bool = option(True, "double Q-learning: the online network picks the target's actions")


class QMIX:
    """Flat QMIX over ``num_envs`` joint transition streams of ``n_agents`` agents."""

    def __init__(
        self,
        config: QMIXConfig,
        obs_dim: int,
        state_dim: int,
        n_agents: int,
        n_actions: int,
        num_envs: int,
        total_steps: int,
        total_updates: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        check_choice("team_reward", config.team_reward, TEAM_REWARDS)
        if n_actions < 1:
            raise ValueError("QMIX needs a discrete action space; this environment's actions are continuous")
        if config.batch_size > config.buffer_size:
            raise ValueError(f"batch_size={config.batch_size} is larger than buffer_size={config.buffer_size}")
        if config.mixer_embed < 1:
            raise ValueError(f"mixer_embed must be >= 1, got {config.mixer_embed}")
        check_epsilons(config.epsilon_start, config.epsilon_end)
        self.config = config
        self.n_agents, self.n_actions = n_agents, n_actions
        self.device = torch.device(device)
        self.decay_steps = max(config.exploration_fraction * total_steps, 1.0)
        self.agents = IndependentGoalQ(obs_dim, n_agents, n_actions, config.hidden_sizes).to(self.device)
        self.mixer = QMixer(n_agents, state_dim, config.mixer_embed).to(self.device)
        self.engine = UpdateEngine(
            {"agents": self.agents, "mixer": self.mixer}, config, total_updates, targets=["agents", "mixer"], seed=seed
        )
        self.replay = ReplayBuffer(
            {
                "observation": Field((n_agents, obs_dim)),
                "state": Field((state_dim,)),
                "action": Field((n_agents,), torch.long),
                "reward": Field(()),
                "next_observation": Field((n_agents, obs_dim)),
                "next_state": Field((state_dim,)),
                "next_action_mask": Field((n_agents, n_actions), torch.bool),
                "terminated": Field((), torch.bool),
                "truncated": Field((), torch.bool),
            },
            capacity=config.buffer_size,
            num_streams=num_envs,
            device=self.device,
            n_step=config.n_step,
            gamma=config.gamma,
            seed=seed,
            sampler=config,
            total_draws=total_updates,
        )
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed + 1)

    def engines(self) -> dict[str, UpdateEngine]:
        """The update engines of this learner, by name (for hooks and selection stages)."""
        return {"q": self.engine}

    # --- acting --------------------------------------------------------------------
    def epsilon(self, global_step: int) -> float:
        return linear_decay(global_step, self.decay_steps, self.config.epsilon_start, self.config.epsilon_end)

    def _greedy(self, obs: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        allowed = some_allowed(obs["action_mask"])
        return self.agents(obs["observation"]).masked_fill(~allowed, -torch.inf).argmax(-1), allowed

    @torch.no_grad()
    def act_greedy(self, obs: Tensors) -> torch.Tensor:
        return self._greedy(obs)[0]

    @torch.no_grad()
    def act(self, obs: Tensors, global_step: int) -> torch.Tensor:
        greedy, allowed = self._greedy(obs)
        explore = torch.rand(greedy.shape, generator=self.generator, device=self.device) < self.epsilon(global_step)
        return torch.where(explore, masked_random_choice(allowed, self.generator), greedy)

    # --- learning ------------------------------------------------------------------
    def store(self, transition: Tensors) -> None:
        reward = transition["reward"]
        self.replay.add(
            {
                "observation": transition["observation"],
                "state": transition["state"],
                "action": transition["action"],
                "reward": reward.mean(-1) if self.config.team_reward == "mean" else reward.sum(-1),
                "next_observation": transition["next_observation"],
                "next_state": transition["next_state"],
                "next_action_mask": transition["next_action_mask"],
                "terminated": transition["terminated"],
                "truncated": transition["truncated"],
            }
        )

    def can_update(self) -> bool:
        return len(self.replay) >= self.config.batch_size

    def update(self) -> dict[str, Any]:
        return self.engine.update(self.loss, self.replay)

    def loss(self, batch: Tensors) -> tuple[RowLoss, dict[str, torch.Tensor]]:
        """Each joint row's Huber TD loss on the mixed value; its score is the absolute TD error."""
        q_taken = self.agents(batch["observation"]).gather(-1, batch["action"][..., None]).squeeze(-1)
        q_total = self.mixer(q_taken, batch["state"])
        with torch.no_grad():
            next_obs = batch["next_observation"]
            next_target = self.engine.targets["agents"](next_obs)
            selector = self.agents(next_obs) if self.config.double_q else next_target
            next_value = bootstrap_value(next_target, selector, some_allowed(batch["next_action_mask"]))
            next_total = self.engine.targets["mixer"](next_value, batch["next_state"])
            target = batch["reward"] + batch["discount"] * (~batch["terminated"]).float() * next_total
        errors = F.smooth_l1_loss(q_total.float(), target.float(), reduction="none")
        return RowLoss(errors, scores=(target - q_total.detach()).abs()), {"q_mean": q_taken.detach().mean()}

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
