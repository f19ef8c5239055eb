"""The goal-conditioned low level every hierarchical learner shares.

A goal-conditioned DQN over the primitives that no one-step goal issues (moves, for
instance), trained on the intrinsic reward (``reach_bonus`` when the goal is reached,
``-step_cost`` per step; reaching the goal is terminal), with its own replay. Its
parameters are shared across agents (agent id as input) unless ``low_shared`` is off.

A goal's encoding may change with every step (basketball encodes the target relative to
the defender, and the target moves), so a low-level row keeps the encodings before the
step, read by ``Q(s, a, g)``, and after it, read by the bootstrap ``max_a' Q'(s', a', g')``;
the encoding after the step reveals which move was taken, so it must never stand in for
the one the agent acted on.

With ``low_relabel`` (all-goals updating, Kaelbling 1993) every low-level step is also a
transition for every other goal the low level navigates to, with that goal's intrinsic
reward: the moves' effects do not depend on the goal, so one random walk teaches the way
to every goal it passes (half of each batch keeps the pursued goal).

With ``elimination`` the low level carries AE-DQN's elimination component
(:mod:`hmarl.elimination`): a network learns from the environment's ``invalid_action``
signal which primitives would have no effect, its bandit eliminates the confidently
invalid ones, and acting skips them.

With ``low_view="egocentric"`` the network reads the grid observation and the goal's map
centred on its agent (:class:`hmarl.nets.EgocentricView`): on layouts drawn anew every
episode, a wall beside the agent or a goal two cells away then looks the same on every
layout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmarl.core import Field, ReplayBuffer, RowLoss, UpdateEngine, check_choice
from hmarl.elimination import BANDIT_CHUNK, ActionElimination
from hmarl.hier.config import LOW_VIEWS, HierBaseConfig, HierSpec
from hmarl.nets import EgocentricView, GoalConditionedQ
from hmarl.qlearning import bootstrap_value, masked_random_choice, some_allowed

Tensors = Mapping[str, torch.Tensor]


class GoalConditionedLowLevel:
    """The low level's network, engine, replay and (optionally) elimination component."""

    def __init__(
        self, config: HierBaseConfig, spec: HierSpec, total_updates: int, device: torch.device, seed: int = 0
    ) -> None:
        check_choice("low_view", config.low_view, LOW_VIEWS)
        self.config = config
        self.spec = spec
        self.device = device
        self.low_actions = torch.tensor(spec.low_actions, dtype=torch.long, device=device)
        self.navigation_goals = np.array(spec.navigation_goals, dtype=np.int64)
        n_navigation = len(spec.navigation_goals)
        # Position of each goal among the navigation goals (one-step goals: 0, never read).
        self.navigation_index = np.zeros(spec.n_goals, dtype=np.int64)
        self.navigation_index[self.navigation_goals] = np.arange(n_navigation)
        view = None
        if config.low_view == "egocentric":
            if not spec.observation_grid or not spec.goal_grid:
                raise ValueError(
                    "low_view='egocentric' needs an environment whose observations and goal encodings start "
                    "with grids (observation_grid and goal_grid); use low_view='full'"
                )
            view = EgocentricView(spec.obs_dim, spec.goal_dim, spec.observation_grid, spec.goal_grid)
        self.net = GoalConditionedQ(
            spec.obs_dim,
            spec.goal_dim,
            spec.n_agents,
            len(spec.low_actions),
            config.low_hidden_sizes,
            shared=config.low_shared,
            view=view,
        ).to(device)
        modules: dict[str, nn.Module] = {"low": self.net}
        self.elimination: ActionElimination | None = None
        if config.elimination:
            self.elimination = ActionElimination(
                config, spec.obs_dim, len(spec.low_actions), spec.observation_grid, device, seed
            )
            modules["elimination"] = self.elimination.network
        updates = total_updates * config.low_updates
        self.engine = UpdateEngine(modules, dataclasses.replace(config, lr=config.low_lr), updates, targets=["low"], seed=seed)
        obs_dtype = torch.float16 if config.compact_replay else torch.float32
        self.replay = ReplayBuffer(
            {
                "observation": Field((spec.obs_dim,), obs_dtype),
                "agent": Field((), torch.long),
                "action": Field((), torch.long),
                "next_observation": Field((spec.obs_dim,), obs_dtype),
                "next_action_mask": Field((len(spec.low_actions),), torch.bool),
                "terminated": Field((), torch.bool),
                "invalid": Field((), torch.bool),
                # Every navigation goal's encoding before and after the step (an encoding
                # may follow the agent or a moving target), feasibility before and reach
                # after the step; the pursued one is ``goal_index`` (all-goals updating
                # reads the others).
                "goal_index": Field((), torch.long),
                "goal_encodings": Field((n_navigation, spec.goal_dim), obs_dtype),
                "next_goal_encodings": Field((n_navigation, spec.goal_dim), obs_dtype),
                "feasible": Field((n_navigation,), torch.bool),
                "reached": Field((n_navigation,), torch.bool),
            },
            capacity=config.low_buffer_size,
            num_streams=1,
            device=device,
            seed=seed,
            sampler=config,
            total_draws=updates,
        )
        self.relabel_generator = torch.Generator(device=device)
        self.relabel_generator.manual_seed(seed + 4)

    # --- acting --------------------------------------------------------------------
    def choose(
        self,
        observation: torch.Tensor,
        encoding: torch.Tensor,
        agent: torch.Tensor,
        action_mask: torch.Tensor,
        epsilon: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Each flat row's primitive, as an index into ``low_actions``: epsilon-greedy
        among the allowed ones (the environment's mask, less what elimination rules out)."""
        allowed = some_allowed(action_mask[:, self.low_actions])
        if self.elimination is not None:
            restricted = self.elimination.restrict(allowed, observation)
            allowed = allowed if restricted is None else restricted
        choice = self.net(observation, encoding, agent).masked_fill(~allowed, -torch.inf).argmax(-1)
        if epsilon > 0.0:
            explore = torch.rand(choice.shape, generator=generator, device=self.device) < epsilon
            choice = torch.where(explore, masked_random_choice(allowed, generator), choice)
        return choice

    # --- storing -------------------------------------------------------------------
    def store(self, rows: Mapping[str, torch.Tensor]) -> None:
        self.replay.extend(rows)
        if self.elimination is not None:
            self.elimination.observe(rows["observation"].float(), rows["action"], rows["invalid"])

    # --- learning ------------------------------------------------------------------
    def batch(self, rows: Tensors) -> dict[str, torch.Tensor]:
        """Low-level transitions from replay rows: the pursued goal, or with
        ``low_relabel`` for half of them another navigation goal feasible at the time,
        with that goal's intrinsic reward and termination."""
        index = rows["goal_index"]
        if self.config.low_relabel:
            other = masked_random_choice(some_allowed(rows["feasible"]), self.relabel_generator)
            keep = torch.rand(index.shape, generator=self.relabel_generator, device=self.device) < 0.5
            index = torch.where(keep, index, other)
        reached = rows["reached"].gather(1, index[:, None]).squeeze(1)
        kept = ("observation", "agent", "action", "next_observation", "next_action_mask", "invalid")
        batch = {name: rows[name] for name in kept}
        picked = torch.arange(len(index), device=self.device)
        batch["goal"] = rows["goal_encodings"][picked, index]
        batch["next_goal"] = rows["next_goal_encodings"][picked, index]
        batch["reward"] = reached.float() * self.config.reach_bonus - self.config.step_cost
        batch["terminal"] = reached | rows["terminated"]
        return batch

    def loss(self, rows: Tensors) -> tuple[RowLoss, dict[str, torch.Tensor]]:
        """Each (relabelled) row's Huber TD loss; its score is the absolute TD error."""
        batch = self.batch(rows)
        obs, goal, agent = batch["observation"].float(), batch["goal"].float(), batch["agent"]
        next_goal = batch["next_goal"].float()
        q_taken = self.net(obs, goal, agent).gather(1, batch["action"][:, None]).squeeze(1)
        with torch.no_grad():
            next_obs = batch["next_observation"].float()
            next_read = self.net.read(next_obs, next_goal)
            next_target = self.engine.targets["low"](next_obs, next_goal, agent, next_read)
            selector = self.net(next_obs, next_goal, agent, next_read) if self.config.double_q else next_target
            next_q = bootstrap_value(next_target, selector, some_allowed(batch["next_action_mask"]))
            target = batch["reward"] + self.config.low_gamma * (~batch["terminal"]).float() * next_q
        errors = F.smooth_l1_loss(q_taken.float(), target.float(), reduction="none")
        rows_loss = RowLoss(errors, scores=(target.float() - q_taken.detach().float()).abs())
        extras = {"q_mean": q_taken.detach().mean()}
        if self.elimination is not None:
            elimination_loss = self.elimination.loss(obs, batch["action"], batch["invalid"])
            rows_loss.auxiliary = elimination_loss
            extras["elimination_loss"] = elimination_loss.detach()
        return rows_loss, extras

    def update(self) -> dict[str, Any]:
        """``low_updates`` updates; the metrics of the last."""
        for _ in range(self.config.low_updates):
            if self.elimination is not None:
                self.elimination.refit_due(
                    self.engine.updates, lambda: self.replay.recent(("observation",), BANDIT_CHUNK)["observation"]
                )
            metrics = self.engine.update(self.loss, self.replay)
        if self.elimination is not None:
            metrics["admissible_actions"] = self.elimination.mean_admissible
        return metrics

    def state_dict(self) -> dict[str, Any]:
        state = {
            "low_engine": self.engine.state_dict(),
            "low_replay": self.replay.state_dict(),
            "relabel_generator": self.relabel_generator.get_state(),
        }
        if self.elimination is not None:
            state["low_elimination"] = self.elimination.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.engine.load_state_dict(state["low_engine"])
        self.replay.load_state_dict(state["low_replay"])
        self.relabel_generator.set_state(state["relabel_generator"])
        if self.elimination is not None:
            self.elimination.load_state_dict(state["low_elimination"])
