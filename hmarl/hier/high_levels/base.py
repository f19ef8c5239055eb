"""What every high level shares: its replay of ACER's rows, its update engine, the SMDP
double-Q bootstrap, and the per-agent loss of the independent learners.

A high level is a subclass of :class:`HighLevel` that says what differs:

* :meth:`HighLevel.build_modules`: the networks its engine trains (``agents``, the
  per-agent values over goals, is required; every module gets a target network);
* :meth:`HighLevel.extra_fields`: replay fields beyond ACER's rows (the state, for a mixer);
* :meth:`HighLevel.loss`: its per-row loss on a batch of rows;
* :meth:`HighLevel.goal_values`: the value of the goals in force, as it learns it;
* ``Options``: the dataclass of its own options, a section of the trainer's config
  named after it (None if it has none).

**The targets.** The target of agent ``i`` for a high-level row (see
:mod:`hmarl.hier.acer`) is ``R_i + gamma**tau * V_i(next)``: ``R_i`` the reward
collected during the row, discounted per step, ``tau`` its duration, and ``V_i`` the
target network's value of the goal the online network picks among the feasible goals
(double Q) where the agent picks anew, or of the goal it continues otherwise. Terminal
rows do not bootstrap. With ``return_regularizer`` ``lambda > 0`` the loss adds
``lambda * (Q - G)**2``, ``Q`` the value the row trains and ``G`` the discounted return
that followed the row's start in its episode (RES, Pan et al. 2021), against the
overestimation that the maxima of several agents add up to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from hmarl.core import Field, ReplayBuffer, RowLoss, UpdateEngine
from hmarl.hier.acer import NEXT_GOAL_FIELD, RETURN_FIELD
from hmarl.hier.config import HierBaseConfig, HierSpec
from hmarl.nets import IndependentGoalQ
from hmarl.qlearning import bootstrap_value, some_allowed

Tensors = Mapping[str, torch.Tensor]


class HighLevel:
    """A learned high level over goals: networks, replay, loss and values (see the module)."""

    name: ClassVar[str] = ""
    Options: ClassVar[type | None] = None
    learns: ClassVar[bool] = True

    def __init__(
        self,
        config: HierBaseConfig,
        spec: HierSpec,
        total_updates: int,
        device: torch.device,
        seed: int = 0,
        options: Any = None,
    ) -> None:
        self.config = config
        self.spec = spec
        self.device = device
        self.options = options if options is not None or self.Options is None else self.Options()
        self.engine: UpdateEngine | None = None
        self.replay: ReplayBuffer | None = None
        if not self.learns:
            return
        modules = {name: module.to(device) for name, module in self.build_modules().items()}
        if "agents" not in modules:
            raise TypeError(f"high level {self.name!r}: build_modules() must include the per-agent values 'agents'")
        self.engine = UpdateEngine(modules, config, total_updates, targets=list(modules), seed=seed)
        self.replay = ReplayBuffer(
            {**self.row_fields(), **self.extra_fields()},
            capacity=config.high_buffer_size,
            num_streams=1,
            device=device,
            seed=seed,
            sampler=config,
            total_draws=total_updates,
        )

    # --- what a high level declares -----------------------------------------------
    def build_modules(self) -> dict[str, nn.Module]:
        """The networks the engine trains; the default is each agent's Q over goals."""
        spec, config = self.spec, self.config
        return {
            "agents": IndependentGoalQ(
                spec.obs_dim, spec.n_agents, spec.n_goals, config.high_hidden_sizes, shared=config.high_shared
            )
        }

    def extra_fields(self) -> dict[str, Field]:
        """Replay fields beyond ACER's rows."""
        return {}

    @property
    def obs_dtype(self) -> torch.dtype:
        return torch.float16 if self.config.compact_replay else torch.float32

    def row_fields(self) -> dict[str, Field]:
        """ACER's rows as the replay stores them."""
        n_agents, n_goals, obs_dtype = self.spec.n_agents, self.spec.n_goals, self.obs_dtype
        fields = {
            "obs": Field((n_agents, self.spec.obs_dim), obs_dtype),
            "goal": Field((n_agents,), torch.long),
            "reward": Field((n_agents,)),
            "duration": Field((), torch.long),
            "next_obs": Field((n_agents, self.spec.obs_dim), obs_dtype),
            "next_goal_mask": Field((n_agents, n_goals), torch.bool),
            "next_free": Field((n_agents,), torch.bool),
            "terminated": Field((), torch.bool),
            "acting": Field((n_agents,), torch.bool),
        }
        if self.config.return_regularizer > 0:
            fields[RETURN_FIELD] = Field((n_agents,))
        if self.config.high_n_step > 1:
            fields[NEXT_GOAL_FIELD] = Field((n_agents,), torch.long)
        return fields

    @property
    def learning_engine(self) -> UpdateEngine:
        """The update engine of a high level that learns."""
        if self.engine is None:
            raise TypeError(f"high level {self.name!r} does not learn; it has no update engine")
        return self.engine

    @property
    def learning_replay(self) -> ReplayBuffer:
        """The replay of a high level that learns."""
        if self.replay is None:
            raise TypeError(f"high level {self.name!r} does not learn; it has no replay")
        return self.replay

    # --- values -------------------------------------------------------------------
    def agent_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Each agent's Q over goals, ``(..., N, obs_dim) -> (..., N, n_goals)``."""
        return self.learning_engine.modules["agents"](obs)

    def chosen_values(self, obs: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """Each agent's value of its goal, ``Q_i(o_i, g_i)``: ``(M, N, obs_dim)``, ``(M, N)`` -> ``(M, N)``."""
        return self.agent_values(obs.float()).gather(-1, goals[..., None]).squeeze(-1)

    def goal_values(self, observation: torch.Tensor, state: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """The learned value of the goals in force: each agent's ``Q_i(o_i, g_i)`` ``(num_envs, N)``."""
        return self.chosen_values(observation, goals)

    def team_quantity(self, per_agent: Any) -> Any:
        """What the learned value is of, from per-agent rewards or returns: themselves."""
        return per_agent

    # --- learning -----------------------------------------------------------------
    @torch.no_grad()
    def smdp_targets(self, batch: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        """Each agent's bootstrap value ``V_i(next)`` (M, N) and the factor in front of
        it, ``gamma**tau`` for rows that did not terminate and 0 for those that did (M,)."""
        agents, target_agents = self.learning_engine.modules["agents"], self.learning_engine.targets["agents"]
        next_obs = batch["next_obs"].float()
        # The goals the agents that do not pick anew continue where the row ends.
        goal = batch[NEXT_GOAL_FIELD] if NEXT_GOAL_FIELD in batch else batch["goal"]
        next_target = target_agents(next_obs)
        selector = agents(next_obs) if self.config.double_q else next_target
        value = torch.where(
            batch["next_free"],
            bootstrap_value(next_target, selector, some_allowed(batch["next_goal_mask"])),
            next_target.gather(-1, goal[..., None]).squeeze(-1),
        )
        discount = self.config.gamma ** batch["duration"].float() * (~batch["terminated"]).float()
        return value, discount

    def loss(self, batch: Tensors) -> tuple[RowLoss, dict[str, torch.Tensor]]:
        """Each acting agent's Huber SMDP TD loss, averaged over the acting agents of the batch."""
        q_taken = self.chosen_values(batch["obs"], batch["goal"])
        next_value, discount = self.smdp_targets(batch)
        target = batch["reward"] + discount[:, None] * next_value
        acting = batch["acting"].float()
        errors = F.smooth_l1_loss(q_taken.float(), target.float(), reduction="none")
        extras: dict[str, torch.Tensor] = {"q_mean": q_taken.detach().mean()}
        weight = self.config.return_regularizer
        if weight > 0:
            gap = q_taken.float() - batch[RETURN_FIELD]
            extras["return_gap"] = (gap * acting).sum().detach() / acting.sum().clamp(min=1.0)
            errors = errors + weight * gap.square()
        # A row's score: its acting agents' mean absolute TD error.
        td = (target.float() - q_taken.detach().float()).abs() * acting
        scores = td.sum(1) / acting.sum(1).clamp(min=1.0)
        return RowLoss(errors * acting, scores=scores, normalizer=acting.sum().clamp(min=1.0)), extras

    def update(self) -> dict[str, Any]:
        return self.learning_engine.update(self.loss, self.replay)

    def state_dict(self) -> dict[str, Any]:
        return {"high_engine": self.learning_engine.state_dict(), "high_replay": self.learning_replay.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.learning_engine.load_state_dict(state["high_engine"])
        self.learning_replay.load_state_dict(state["high_replay"])


def team_sum_or_mean(per_agent: Any, how: str) -> Any:
    """Per-agent quantities ``(..., N)`` of an array or tensor to the team's ``(...)``: their mean or sum."""
    return per_agent.mean(-1) if how == "mean" else per_agent.sum(-1)
