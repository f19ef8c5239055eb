"""The hierarchical learner: a high level over goals on top of a goal-conditioned low level.

Ind-hDQN, hCom, hQmix and the low-level-only baseline differ only in the high level
(``high_level``), each one module of :mod:`hmarl.hier.high_levels` behind a registry:

=================  ==================================================================
``independent``    Ind-hDQN: each agent's Q over goals from its own observation; per
                   agent SMDP targets.
``comm``           hCom: CommNet-style Q (each agent also receives the mean of the
                   other agents' hidden vectors); per agent SMDP targets.
``qmix``           hQmix: the agents' chosen values mixed by a monotonic QMIX network
                   on the global state; one SMDP target for the team reward.
``random``         low-level-only: goals drawn uniformly among the feasible ones; only
                   the low level learns.
=================  ==================================================================

The low level is :class:`hmarl.hier.low_level.GoalConditionedLowLevel`. What this class
keeps is what every learner shares: the running options, ACER's recorder of high-level
rows (:mod:`hmarl.hier.acer`), acting at both levels, storing, and the schedule.

**Schedule.** The low level learns from the first update, with ``low_updates``
gradient steps for each of the high level's: a navigation value spreads one step along
a path per target copy, so the low level's progress is counted in updates; for
``high_level_starts`` environment steps the goals are drawn at random (the low
level's pre-training) while high-level experience is already recorded; then the high
level learns and explores with an epsilon that decays over ``high_exploration_steps``.
With ``low_freeze_success`` the low level stops learning for good once it reaches that
fraction of its goals (the original's ``--is-stop``): on a fixed layout its replay
narrows to the high level's routes, and trained on, its values drift off the goals it
no longer walks to (``docs/research/ring_low_level.md``).

The agent needs the environment's options interface (``goal_mask``, ``goal_reached``,
``goal_encoding``, ``goal_primitive``): the training loop hands it the batched
environments through :meth:`HierarchicalAgent.attach_env`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hmarl.core import ReplayBuffer, UpdateEngine
from hmarl.core.config import with_sections
from hmarl.hier.acer import ACERRecorder
from hmarl.hier.config import HierBaseConfig, HierSpec, OptionsEnv
from hmarl.hier.high_levels import HighLevel, high_level_class, high_level_sections
from hmarl.hier.low_level import GoalConditionedLowLevel
from hmarl.hier.options import Options
from hmarl.nets import GoalConditionedQ
from hmarl.qlearning import check_epsilons, linear_decay, masked_random_choice, some_allowed

Tensors = Mapping[str, torch.Tensor]
OPTION_STATS_DECAY = 0.99
# Options that must have ended (decayed count) before the goal success may freeze the low level.
MIN_FREEZE_OPTIONS = 100
HierConfig = with_sections(
    "HierConfig",
    HierBaseConfig,
    high_level_sections(),
    doc="Options of the hierarchical learners: the shared ones, and a section per high level with options of its own.",
)

GoalPolicy = Callable[[np.ndarray], np.ndarray]
"""A scripted high level: goal mask ``(num_envs, N, n_goals)`` to goals ``(num_envs, N)``."""


def _checked_goals(goals: np.ndarray, goal_mask: np.ndarray) -> np.ndarray:
    """``goals`` from a goal policy, as integers, once they are known to be feasible."""
    goals = np.asarray(goals)
    if goals.shape != goal_mask.shape[:-1] or not np.issubdtype(goals.dtype, np.integer):
        raise ValueError(
            f"goal_policy must return integer goals of shape {goal_mask.shape[:-1]}, got {goals.dtype} {goals.shape}"
        )
    if ((goals < 0) | (goals >= goal_mask.shape[-1])).any():
        raise ValueError(f"goal_policy returned goals outside [0, {goal_mask.shape[-1]})")
    if not np.take_along_axis(goal_mask, goals[..., None], -1).all():
        raise ValueError("goal_policy returned a goal that the goal mask rules out")
    return goals.astype(np.int64)


@dataclass
class _Pending:
    """What acting decided at one step, for storing that step's transition."""

    goals: np.ndarray
    low_choice: torch.Tensor
    one_step: np.ndarray
    goal_mask: np.ndarray
    navigation_encodings: np.ndarray | None = None
    """Every navigation goal's encoding before the step (training only)."""


class HierarchicalAgent:
    """Ind-hDQN, hCom, hQmix, low-level-only or any registered high level, as
    ``config.high_level`` says. The high level's own options are ``high_options``, or
    else the config's section named after it, or else its defaults."""

    def __init__(
        self,
        config: HierBaseConfig,
        spec: HierSpec,
        option_len: int,
        total_updates: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        high_options: Any = None,
    ) -> None:
        high_level = high_level_class(config.high_level)
        for name in ("high_buffer_size", "low_buffer_size"):
            if getattr(config, name) < config.batch_size:
                raise ValueError(f"{name}={getattr(config, name)} must be >= batch_size={config.batch_size}")
        if config.return_regularizer < 0:
            raise ValueError(f"return_regularizer must be >= 0 (0 disables it), got {config.return_regularizer}")
        if isinstance(config.high_n_step, bool) or not isinstance(config.high_n_step, int) or config.high_n_step < 1:
            raise ValueError(f"high_n_step must be an integer >= 1, got {config.high_n_step!r}")
        if config.high_n_step > 1 and not config.acer_concurrent:
            raise ValueError("high_n_step > 1 chains concurrent ACER rows; it needs acer_concurrent=True")
        if config.low_updates < 1:
            raise ValueError(f"low_updates must be >= 1, got {config.low_updates}")
        for name in ("gamma", "low_gamma"):
            if not 0.0 <= getattr(config, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(config, name)}")
        if not 0.0 <= config.low_freeze_success <= 1.0:
            raise ValueError(f"low_freeze_success must be in [0, 1] (0 disables it), got {config.low_freeze_success}")
        check_epsilons(config.epsilon_start, config.epsilon_end)
        self.config = config
        self.spec = spec
        self.device = torch.device(device)
        self.option_len = option_len
        n_agents, n_goals = spec.n_agents, spec.n_goals
        self.low = GoalConditionedLowLevel(config, spec, total_updates, self.device, seed)
        if high_options is None:
            high_options = getattr(config, high_level.name, None)
        self.high: HighLevel = high_level(config, spec, total_updates, self.device, seed + 1, high_options)
        self.navigation_goals = self.low.navigation_goals
        self.one_step_goals = np.setdiff1d(np.arange(n_goals), self.navigation_goals)
        self.options = Options(
            spec.num_envs,
            n_agents,
            n_goals,
            option_len,
            config.termination,
            config.reach_bonus,
            config.step_cost,
            config.hold_goals,
        )
        self.recorder = ACERRecorder(
            spec.num_envs,
            n_agents,
            spec.obs_dim,
            spec.state_dim,
            n_goals,
            option_len,
            config.gamma,
            augmented=config.acer_augmented,
            concurrent=config.acer_concurrent,
            episode_returns=self.learns_high and config.return_regularizer > 0,
            n_step=config.high_n_step if self.learns_high else 1,
        )
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed + 2)
        self.eval_seed = seed + 3
        self.eval_generator = torch.Generator(device=self.device)
        self.global_step = 0
        # Options ended, their summed length, goals reached: counts that decay by
        # OPTION_STATS_DECAY per update, so the logged means cover the last ~100 updates
        # whichever update the log samples.
        self.option_stats = np.zeros(3)
        # Environment step at which the low level stopped learning (low_freeze_success).
        self.low_frozen_at: int | None = None
        self.env: OptionsEnv | None = None
        self.eval_env: OptionsEnv | None = None
        self.eval_options: Options | None = None
        self.eval_one_step: np.ndarray | None = None
        self.pending: _Pending | None = None

    # --- the two levels' parts -------------------------------------------------------
    @property
    def learns_high(self) -> bool:
        return self.high.learns

    @property
    def low_net(self) -> GoalConditionedQ:
        return self.low.net

    @property
    def low_engine(self) -> UpdateEngine:
        return self.low.engine

    @property
    def low_replay(self) -> ReplayBuffer:
        return self.low.replay

    @property
    def high_engine(self) -> UpdateEngine | None:
        return self.high.engine

    @property
    def high_replay(self) -> ReplayBuffer | None:
        return self.high.replay

    def engines(self) -> dict[str, UpdateEngine]:
        """The update engines of this learner, by name (for hooks and selection stages)."""
        engines = {"low": self.low.engine}
        if self.high.engine is not None:
            engines["high"] = self.high.engine
        return engines

    # --- environments --------------------------------------------------------------
    def attach_env(self, env: OptionsEnv, evaluation: bool) -> None:
        """Act on ``env`` from now on: the training environment (whose running options
        this agent keeps in its state), or an evaluation environment that was just
        reset (greedy episodes start with fresh options)."""
        if env.n_agents != self.spec.n_agents or len(env.goal_names) != self.spec.n_goals:
            raise ValueError(
                f"env has {env.n_agents} agents and {len(env.goal_names)} goals; this agent was built "
                f"for {self.spec.n_agents} and {self.spec.n_goals}"
            )
        if not evaluation:
            if env.num_envs != self.spec.num_envs:
                raise ValueError(f"the training env has {env.num_envs} copies, the agent expects {self.spec.num_envs}")
            self.env = env
            return
        self.eval_env = env
        self.eval_options = Options(
            env.num_envs,
            self.spec.n_agents,
            self.spec.n_goals,
            self.option_len,
            self.config.termination,
            hold=self.config.hold_goals,
        )
        self.eval_one_step = None
        self.eval_generator.manual_seed(self.eval_seed)

    # --- acting --------------------------------------------------------------------
    def high_epsilon(self, global_step: int) -> float:
        if global_step < self.config.high_level_starts:
            return 1.0
        c = self.config
        return linear_decay(global_step - c.high_level_starts, c.high_exploration_steps, c.epsilon_start, c.epsilon_end)

    def low_epsilon(self, global_step: int) -> float:
        c = self.config
        return linear_decay(global_step, c.low_exploration_steps, c.epsilon_start, c.epsilon_end)

    def high_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Each agent's Q over goals, ``(..., N, obs_dim) -> (..., N, n_goals)``."""
        if not self.learns_high:
            raise RuntimeError(f"the {self.config.high_level!r} high level learns no values")
        return self.high.agent_values(obs)

    def chosen_values(self, obs: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """Each agent's value of its goal, ``Q_i(o_i, g_i)``: ``(M, N, obs_dim)``, ``(M, N)`` -> ``(M, N)``."""
        return self.high.chosen_values(obs, goals)

    @torch.no_grad()
    def goal_values(self, observation: torch.Tensor, state: torch.Tensor, goals: np.ndarray) -> torch.Tensor:
        """The learned value of the goals in force, as the high level learns it: hQmix's
        ``Q_tot(s, g)`` ``(num_envs,)``, else each agent's ``Q_i(o_i, g_i)`` ``(num_envs, N)``."""
        return self.high.goal_values(observation, state, torch.as_tensor(goals, device=self.device))

    def team_quantity(self, per_agent: Any) -> Any:
        """What the high level's value is of, from per-agent rewards or returns ``(..., N)``."""
        return self.high.team_quantity(per_agent)

    def _choose_goals(
        self, observation: torch.Tensor, goal_mask: np.ndarray, epsilon: float, generator: torch.Generator
    ) -> np.ndarray:
        allowed = some_allowed(torch.as_tensor(goal_mask, device=self.device))
        if self.learns_high and epsilon < 1.0:
            greedy = self.high_values(observation).masked_fill(~allowed, -torch.inf).argmax(-1)
            if epsilon > 0.0:
                explore = torch.rand(greedy.shape, generator=generator, device=self.device) < epsilon
                greedy = torch.where(explore, masked_random_choice(allowed, generator), greedy)
            return greedy.cpu().numpy()
        return masked_random_choice(allowed, generator).cpu().numpy()

    @torch.no_grad()
    def greedy_goals(self, observation: torch.Tensor, goal_mask: np.ndarray) -> np.ndarray:
        """Every agent's greedy goal among those ``goal_mask`` allows, ``(num_envs, N)``: the
        high level's best, or for the low-level-only learner a random one drawn from the
        evaluation stream (see :meth:`act_greedy`)."""
        return self._choose_goals(observation, goal_mask, 0.0, self.eval_generator)

    def _agent_index(self, num_envs: int) -> torch.Tensor:
        return torch.arange(self.spec.n_agents, device=self.device).repeat(num_envs)

    def _primitive_actions(
        self, env: OptionsEnv, obs: Tensors, goals: np.ndarray, epsilon: float, generator: torch.Generator
    ) -> tuple[torch.Tensor, _Pending]:
        """Each agent's primitive: its one-step goal's action, else the low level's choice."""
        num_envs, n_agents = goals.shape
        encoding = torch.as_tensor(env.goal_encoding(goals), device=self.device)
        primitive = env.goal_primitive(goals)
        goal_mask = env.goal_mask()
        choice = self.low.choose(
            obs["observation"].flatten(0, 1),
            encoding.flatten(0, 1),
            self._agent_index(num_envs),
            obs["action_mask"].flatten(0, 1),
            epsilon,
            generator,
        )
        low_primitive = self.low.low_actions[choice].view(num_envs, n_agents).cpu().numpy()
        actions = np.where(primitive >= 0, primitive, low_primitive)
        pending = _Pending(goals.copy(), choice.view(num_envs, n_agents), primitive >= 0, goal_mask)
        return torch.as_tensor(actions, device=self.device), pending

    def _require(self, env: OptionsEnv | None, evaluation: bool) -> OptionsEnv:
        if env is None:
            raise RuntimeError(f"call attach_env(env, evaluation={evaluation}) before acting")
        return env

    @torch.no_grad()
    def act(self, obs: Tensors, global_step: int) -> torch.Tensor:
        env = self._require(self.env, False)
        self.global_step = global_step
        deciding = self.options.deciding()
        if deciding.any():
            epsilon = self.high_epsilon(global_step)
            goals = self._choose_goals(obs["observation"], env.goal_mask(), epsilon, self.generator)
            self.options.start(goals, deciding)
        self.recorder.observe(obs["observation"].cpu().numpy(), obs["state"].cpu().numpy(), self.options.goals, deciding)
        actions, self.pending = self._primitive_actions(
            env, obs, self.options.goals, self.low_epsilon(global_step), self.generator
        )
        if self.low_learning:  # only the low level's replay rows read them
            self.pending.navigation_encodings = self._navigation_encodings(env)
        return actions

    def _every_navigation_goal(self) -> list[np.ndarray]:
        """For each navigation goal, that goal for every agent of every training copy."""
        return [np.full(self.options.goals.shape, goal, dtype=np.int64) for goal in self.navigation_goals]

    def _navigation_encodings(self, env: OptionsEnv) -> np.ndarray:
        """Every navigation goal's encoding for every agent, ``(num_envs, N, n_navigation, goal_dim)``."""
        return np.stack([env.goal_encoding(goals) for goals in self._every_navigation_goal()], -2)

    @torch.no_grad()
    def act_greedy(self, obs: Tensors, goal_policy: GoalPolicy | None = None) -> torch.Tensor:
        """Greedy at both levels. Options end as in training, checked lazily on the
        state the previous step led to; a low-level-only agent draws its goals from
        its own evaluation stream, reseeded with every attached evaluation.

        ``goal_policy`` replaces the high level: it maps the goal mask ``(num_envs, N,
        n_goals)`` to every agent's goal ``(num_envs, N)``, of which the agents whose
        option has ended take theirs (to judge a scripted high level over this low level)."""
        env = self._require(self.eval_env, True)
        options, goal_mask = self.eval_options, env.goal_mask()
        if options is None:
            raise RuntimeError("call attach_env(env, evaluation=True) before acting greedily")
        if self.eval_one_step is not None:
            goals = options.goals
            feasible = np.take_along_axis(goal_mask, goals[..., None], -1)[..., 0]
            no = np.zeros(goals.shape, dtype=bool)
            interrupt = self._interrupt(goal_mask, self.eval_one_step)
            options.advance(env.goal_reached(goals), feasible, self.eval_one_step, no, no[:, 0], interrupt)
        deciding = options.deciding()
        if deciding.any():
            if goal_policy is None:
                goals = self.greedy_goals(obs["observation"], goal_mask)
            else:
                goals = _checked_goals(goal_policy(goal_mask), goal_mask)
            options.start(goals, deciding)
        actions, pending = self._primitive_actions(env, obs, options.goals, 0.0, self.eval_generator)
        self.eval_one_step = pending.one_step
        return actions

    # --- storing -------------------------------------------------------------------
    def store(self, transition: Tensors) -> None:
        env = self._require(self.env, False)
        pending = self.pending
        if pending is None:
            raise RuntimeError("store() follows act(): there is no pending step")
        self.pending = None
        terminated = transition["terminated"].cpu().numpy()
        truncated = transition["truncated"].cpu().numpy()
        invalid = transition["invalid_action"].cpu().numpy()
        goals = pending.goals
        goal_mask = env.goal_mask()
        feasible = np.take_along_axis(goal_mask, goals[..., None], -1)[..., 0]
        outcome = self.options.advance(
            env.goal_reached(goals),
            feasible,
            pending.one_step,
            invalid,
            terminated | truncated,
            self._interrupt(goal_mask, pending.one_step),
        )
        if self.low_learning:
            self._store_low_level(env, transition, pending, terminated, terminated | truncated)
        rows = self.recorder.record(
            transition["reward"].cpu().numpy(),
            outcome,
            transition["next_observation"].cpu().numpy(),
            transition["next_state"].cpu().numpy(),
            goal_mask,
            terminated,
            truncated,
        )
        if self.high_replay is not None:
            self.high_replay.extend({name: rows[name] for name in self.high_replay.fields})
        finished = outcome.ended & ~pending.one_step
        if outcome.succeeded is None:
            raise RuntimeError("Options.advance returned an outcome without 'succeeded'")
        self.option_stats += (finished.sum(), outcome.duration[finished].sum(), outcome.succeeded[finished].sum())

    def _interrupt(self, goal_mask: np.ndarray, one_step: np.ndarray) -> np.ndarray | None:
        """With ``interrupt``: the navigating agents for which a one-step goal is feasible."""
        if not self.config.interrupt or not self.one_step_goals.size:
            return None
        return goal_mask[..., self.one_step_goals].any(-1) & ~one_step

    def _store_low_level(
        self, env: OptionsEnv, transition: Tensors, pending: _Pending, terminated: np.ndarray, done: np.ndarray
    ) -> None:
        """One low-level row per agent that pursued a navigation goal, holding every
        navigation goal (for all-goals updating)."""
        navigating = ~pending.one_step
        if not navigating.any():
            return
        env_index, agent_index = np.nonzero(navigating)
        # A copy that finished was reset by the environment: nothing is reached there, and
        # its encodings after the step describe the new episode, so the ones before stand in.
        reached = np.stack([env.goal_reached(goals) for goals in self._every_navigation_goal()], -1)
        reached &= ~done[:, None, None]
        encodings = pending.navigation_encodings
        if encodings is None:
            raise RuntimeError("a low level that learns needs the navigation encodings from before the step")
        next_encodings = np.where(done[:, None, None, None], encodings, self._navigation_encodings(env))
        rows = (torch.as_tensor(env_index, device=self.device), torch.as_tensor(agent_index, device=self.device))
        pursued = self.low.navigation_index[pending.goals[env_index, agent_index]]
        feasible = pending.goal_mask[env_index, agent_index][:, self.navigation_goals]
        self.low.store(
            {
                "observation": transition["observation"][rows],
                "agent": rows[1],
                "action": pending.low_choice[rows],
                "next_observation": transition["next_observation"][rows],
                "next_action_mask": transition["next_action_mask"][..., self.low.low_actions][rows],
                "terminated": torch.as_tensor(terminated[env_index], device=self.device),
                "invalid": transition["invalid_action"][rows],
                "goal_index": torch.as_tensor(pursued, device=self.device),
                "goal_encodings": torch.as_tensor(encodings[env_index, agent_index], device=self.device),
                "next_goal_encodings": torch.as_tensor(next_encodings[env_index, agent_index], device=self.device),
                "feasible": torch.as_tensor(feasible, device=self.device),
                "reached": torch.as_tensor(reached[env_index, agent_index], device=self.device),
            }
        )

    # --- learning ------------------------------------------------------------------
    def low_level_batch(self, rows: Tensors) -> dict[str, torch.Tensor]:
        """The low level's transitions from its replay rows (see :meth:`GoalConditionedLowLevel.batch`)."""
        return self.low.batch(rows)

    def can_update(self) -> bool:
        return len(self.low_replay) >= self.config.batch_size

    def high_level_learning(self) -> bool:
        return (
            self.high_replay is not None
            and self.global_step >= self.config.high_level_starts
            and len(self.high_replay) >= self.config.batch_size
        )

    @property
    def low_learning(self) -> bool:
        """False once ``low_freeze_success`` has frozen the low level: it then neither
        stores replay rows nor updates."""
        return self.low_frozen_at is None

    def _freeze_low_level(self) -> None:
        """Freeze the low level for good once its goal success over the options of the
        last ~100 updates reaches ``low_freeze_success`` (see the module's docstring)."""
        threshold = self.config.low_freeze_success
        ended, _, reached = self.option_stats
        if self.low_learning and threshold > 0 and ended >= MIN_FREEZE_OPTIONS and reached >= threshold * ended:
            self.low_frozen_at = self.global_step

    def update(self) -> dict[str, Any]:
        self._freeze_low_level()
        metrics: dict[str, Any] = {"low_frozen": float(not self.low_learning)}
        if self.low_learning:
            low = self.low.update()
            metrics.update({f"low_{name}": value for name, value in low.items()})
            metrics["loss"] = low["loss"]
        if self.high_level_learning():
            high = self.high.update()
            metrics.update({f"high_{name}": value for name, value in high.items()})
            metrics["loss"] = high["loss"]
        ended, length, reached = self.option_stats
        if ended:
            metrics["option_length"] = length / ended
            metrics["goal_success"] = reached / ended
        self.option_stats *= OPTION_STATS_DECAY
        metrics["high_epsilon"] = self.high_epsilon(self.global_step)
        metrics["low_epsilon"] = self.low_epsilon(self.global_step)
        return metrics

    @torch.no_grad()
    def policy_distance(self, engine: str, rows: Tensors) -> torch.Tensor:
        """The dynamic buffer's distance for discrete choices: the share of stored choices
        that differ from today's greedy one. Low level: the primitive for the pursued goal
        (over every low-level action); high level: the goal of each acting agent (over
        every goal; the replay keeps the goal mask of the next decision, not this one)."""
        if engine == "high":
            greedy = self.high_values(rows["obs"].float()).argmax(-1)
            acting = rows["acting"]
            differ = ((greedy != rows["goal"]) & acting).float().sum()
            return differ / acting.float().sum().clamp(min=1.0)
        picked = torch.arange(len(rows["goal_index"]), device=self.device)
        goal = rows["goal_encodings"][picked, rows["goal_index"]].float()
        greedy = self.low.net(rows["observation"].float(), goal, rows["agent"]).argmax(-1)
        return (greedy != rows["action"]).float().mean()

    def high_loss(self, batch: Tensors) -> tuple[Any, dict[str, torch.Tensor]]:
        """The high level's per-row loss on a batch of its rows."""
        return self.high.loss(batch)

    # --- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            **self.low.state_dict(),
            "options": self.options.state_dict(),
            "recorder": self.recorder.state_dict(),
            "generator": self.generator.get_state(),
            "global_step": self.global_step,
            "option_stats": self.option_stats.copy(),
            "low_frozen_at": self.low_frozen_at,
        }
        if self.learns_high:
            state.update(self.high.state_dict())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.low.load_state_dict(state)
        self.options.load_state_dict(state["options"])
        self.recorder.load_state_dict(state["recorder"])
        self.generator.set_state(state["generator"])
        self.global_step = int(state["global_step"])
        self.option_stats = np.array(state["option_stats"], dtype=np.float64)
        self.low_frozen_at = state.get("low_frozen_at")  # absent in checkpoints from before the option
        if self.learns_high:
            self.high.load_state_dict(state)
