"""The hierarchical learner: a high level over goals on top of a goal-conditioned low level.

One class serves Ind-hDQN, hCom, hQmix and the low-level-only baseline; they differ
only in the high level (``high_level``):

=================  ==================================================================
``independent``    Ind-hDQN: each agent's Q over goals from its own observation; per
                   agent SMDP targets.
``comm``           hCom: CommNet-style Q (each agent also receives the mean of the
                   other agents' hidden vectors); per agent SMDP targets.
``qmix``           hQmix: the agents' chosen values mixed by a monotonic QMIX network
                   on the global state; one SMDP target for the team's summed reward.
``random``         low-level-only: goals drawn uniformly among the feasible ones; only
                   the low level learns.
=================  ==================================================================

**High level.** The target of agent ``i`` for a high-level row (see
:mod:`hmarl.hier.acer`) is ``R_i + gamma**tau * V_i(next)``: ``R_i`` the reward
collected during the row, discounted per step, ``tau`` its duration, and ``V_i`` the
target network's value of the goal the online network picks among the feasible goals
(double Q) where the agent picks anew, or of the goal it continues otherwise. Terminal
rows do not bootstrap. hQmix mixes the chosen values with ``Q_tot(s) = mix(Q_1..Q_N, s)``
and regresses it on ``R + gamma**tau * mix'(V_1..V_N, s')`` with the team reward ``R =
sum_i R_i`` (``team_reward="sum"``, for individual rewards) or ``mean_i R_i`` ("mean", for
a shared reward that every agent receives and that the sum would count ``N`` times).
With ``return_regularizer`` ``lambda > 0`` the loss adds ``lambda * (Q - G)**2``, ``Q``
the value the row trains (``Q_tot`` for hQmix, each acting ``Q_i`` otherwise) and ``G``
the discounted return that followed the row's start in its episode (team return for
hQmix), the regulariser of RES (Pan et al. 2021) against the overestimation that the
maxima of several agents add up to in a mixed bootstrap.

**Low level.** A goal-conditioned DQN over the primitives that no one-step goal issues
(moves, for instance), trained on the intrinsic reward (``reach_bonus`` when the goal is
reached, ``-step_cost`` per step; reaching the goal is terminal), with its own replay.
Its parameters are shared across agents (agent id as input) unless ``low_shared`` is
off. A goal's encoding may change with every step (basketball encodes the target
relative to the defender, and the target moves), so a low-level row keeps the encodings
before the step, read by ``Q(s, a, g)``, and after it, read by the bootstrap
``max_a' Q'(s', a', g')``; the encoding after the step reveals which move was taken,
so it must never stand in for the one the agent acted on. With ``low_relabel``
(all-goals updating, Kaelbling 1993) every low-level step is also a transition for
every other goal the low level navigates to, with that goal's intrinsic reward: the
moves' effects do not depend on the goal, so one random walk teaches the way to every
goal it passes (half of each batch keeps the pursued goal).
With ``elimination`` a second head learns from the environment's ``invalid_action``
signal which primitives would have no effect, and acting skips the primitives it
predicts as such (AE-DQN's elimination network with its sigmoid head, without the
contextual bandit). With ``low_view="egocentric"`` the network reads the grid
observation and the goal's map centred on its agent (:class:`hmarl.nets.EgocentricView`):
on layouts drawn anew every episode, a wall beside the agent or a goal two cells away
then looks the same on every layout (random3, 150,000 steps: greedy reach of random
goals on new layouts 71% against 56% reading the grid as it is).

**Schedule.** The low level learns from the first update, with ``low_updates``
gradient steps for each of the high level's: a navigation value spreads one step along
a path per target copy, so the low level's progress is counted in updates (on room,
4 per update took goal success from 0.2 to 0.8 at 40,000 steps); for
``high_level_starts`` environment steps the goals are drawn at random (the low
level's pre-training) while high-level experience is already recorded; then the high
level learns and explores with an epsilon that decays over ``high_exploration_steps``.
With ``low_freeze_success`` the low level stops learning for good once it reaches that
fraction of its goals (the original's ``--is-stop``): on a fixed layout its replay
narrows to the high level's routes, and trained on, its values drift off the goals it
no longer walks to.

The agent needs the environment's options interface (``goal_mask``, ``goal_reached``,
``goal_encoding``, ``goal_primitive``): the training loop hands it the batched
environments through :meth:`HierarchicalAgent.attach_env`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmarl.core import EngineConfig, Field, ReplayBuffer, UpdateEngine, check_choice, option, redefault
from hmarl.hier.acer import NEXT_GOAL_FIELD, RETURN_FIELD, ACERRecorder
from hmarl.nets import CommGoalQ, EgocentricView, GoalConditionedQ, IndependentGoalQ, QMixer
from hmarl.hier.options import TERMINATIONS, Options

Tensors = Mapping[str, torch.Tensor]
OPTION_STATS_DECAY = 0.99
# Options that must have ended (decayed count) before the goal success may freeze the low level.
MIN_FREEZE_OPTIONS = 100
HIGH_LEVELS = ("independent", "comm", "qmix", "random")
LOW_VIEWS = ("full", "egocentric")
TEAM_REWARDS = ("sum", "mean")
HIGH_LEVEL_HELP = "high level: independent (Ind-hDQN), comm (hCom), qmix (hQmix) or random (low-level-only)"


class OptionsEnv(Protocol):
    """The batched environment face with the options interface (see DESIGN.md)."""

    num_envs: int
    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int
    goal_dim: int
    goal_names: list[str]

    def goal_mask(self) -> np.ndarray: ...

    def goal_reached(self, goals: np.ndarray) -> np.ndarray: ...

    def goal_encoding(self, goals: np.ndarray) -> np.ndarray: ...

    def goal_primitive(self, goals: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class HierSpec:
    """Sizes of an environment with options, for building the hierarchical learner."""

    num_envs: int
    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int
    n_goals: int
    goal_dim: int
    low_actions: tuple[int, ...]
    navigation_goals: tuple[int, ...]
    observation_grid: tuple[int, ...] = ()
    """``(channels, height, width)`` of the grid an observation starts with; () if none."""
    goal_grid: tuple[int, ...] = ()
    """``(channels, height, width)`` of the maps a goal encoding starts with; () if none."""

    @classmethod
    def of(cls, env: OptionsEnv, num_envs: int | None = None) -> HierSpec:
        """The spec of ``env`` (``num_envs`` overrides its number of copies). The low
        level acts over the primitives that no one-step goal issues."""
        for name in ("goal_mask", "goal_reached", "goal_encoding", "goal_primitive", "goal_names"):
            if not hasattr(env, name):
                raise TypeError(f"env has no options interface: {type(env).__name__} lacks {name!r}")
        n_goals = len(env.goal_names)
        primitives = [
            env.goal_primitive(np.full((env.num_envs, env.n_agents), goal, dtype=np.int64)).max()
            for goal in range(n_goals)
        ]
        low_actions = tuple(a for a in range(env.n_actions) if a not in primitives)
        navigation_goals = tuple(goal for goal, primitive in enumerate(primitives) if primitive < 0)
        if not low_actions or not navigation_goals:
            raise ValueError("every goal is a one-step goal; the low level has nothing to learn")
        return cls(
            num_envs or env.num_envs, env.n_agents, env.obs_dim, env.state_dim, env.n_actions,
            n_goals, env.goal_dim, low_actions, navigation_goals,
            tuple(getattr(env, "observation_grid", None) or ()), tuple(getattr(env, "goal_grid", None) or ()),
        )


@dataclass
class HierConfig(EngineConfig):
    """Options of the hierarchical learners on top of the update engine's (which the
    high level uses as they are and the low level with ``low_lr``)."""

    high_level: str = option("independent", HIGH_LEVEL_HELP, choices=HIGH_LEVELS)
    lr: float = option(2.5e-4, "high-level learning rate at --base-batch-size (before --lr-scaling)")
    low_lr: float = option(5e-4, "low-level learning rate at --base-batch-size (before --lr-scaling)")
    lr_scaling: str = redefault(EngineConfig, "lr_scaling", "sqrt")
    batch_size: int = option(512, "transitions per update, at each level")
    base_batch_size: int = option(64, "batch size at which the learning rates were tuned (the original's)")
    target_update_period: int = option(
        10, "updates between hard target copies (at the low level, each of its --low-updates counts)"
    )
    gamma: float = option(0.95, "high-level discount per environment step (gamma**tau over an option)")
    # 0.95 rather than the original's 0.9: at 0.9 the -0.01 step cost outweighs the
    # discounted reach bonus beyond ~25 steps, so far goals' values vanish in noise.
    low_gamma: float = option(0.95, "low-level discount per environment step")
    double_q: bool = option(True, "double Q-learning at both levels")
    option_len: int = option(0, "steps before an option times out (0: 30, or 15 on the coordination layout)")
    termination: str = option(
        "async", "async: each agent picks a goal when its own option ends; sync: all together", choices=TERMINATIONS
    )
    hold_goals: bool = option(
        False, "navigation options keep their goal once reached (a defender stays with his man) and end only "
        "on timeout, infeasibility, interruption or the episode's end",
    )
    reach_bonus: float = option(1.0, "intrinsic reward for reaching the goal")
    step_cost: float = option(0.01, "intrinsic cost of every low-level step")
    acer_augmented: bool = option(True, "ACER augmentation: rows also start at every intermediate step of an option")
    acer_concurrent: bool = option(True, "ACER concurrency: joint rows between the decision points of any agent")
    return_regularizer: float = option(
        0.0, "high level: weight of a squared penalty on the distance between the learned value (Q_tot for "
        "hQmix, each Q_i otherwise) and the discounted return that followed in the replayed episode (RES, Pan et "
        "al. 2021), against overestimation; rows then enter replay when their episode ends (0: off)",
    )
    high_n_step: int = option(
        1, "high level: extend each row by the segments that followed it until it spans at least N steps and "
        "bootstrap there (n-step returns of the behaviour; needs concurrent ACER); rows then enter replay when "
        "their episode ends (1: bootstrap at the next decision point)",
    )
    high_hidden_sizes: tuple[int, ...] = option((128, 128), "hidden layer widths of the high-level Q network")
    high_shared: bool = option(
        True, "one high-level network for all agents (agent id as input); off: one per agent (independent and "
        "qmix high levels)",
    )
    low_hidden_sizes: tuple[int, ...] = option((128, 128), "hidden layer widths of the low-level Q network")
    # 8 rather than QMIX's 32: on room a 32-wide mixer left the agents' values nearly flat
    # over goals (greedy return 0.5 at 75,000 steps), an 8-wide one was greedy-optimal at 37,500.
    mixer_embed: int = option(8, "hQmix: width of the mixing network")
    team_reward: str = option(
        "sum", "hQmix: the team reward its mixed value learns: sum of the agents' rewards (for individual "
        "rewards) or their mean (for a shared reward that every agent receives, counted once)", choices=TEAM_REWARDS,
    )
    low_view: str = option(
        "full", "low level's input: full (observation and goal as they are) or egocentric (grid observation "
        "and goal map re-centred on the agent; for layouts that change every episode)", choices=LOW_VIEWS,
    )
    low_shared: bool = option(True, "one low-level network for all agents (agent id as input); off: one per agent")
    low_relabel: bool = option(True, "low level: learn every navigation goal from each step (all-goals updating)")
    elimination: bool = option(False, "low level: learn which primitives have no effect and do not take them")
    elimination_threshold: float = option(
        0.5, "eliminate a primitive when its predicted no-effect probability exceeds this"
    )
    interrupt: bool = option(
        False, "end a navigation option as soon as a one-step goal (steal, block, pick, place) is feasible"
    )
    high_buffer_size: int = option(30_000, "high-level replay capacity in rows")
    low_buffer_size: int = option(50_000, "low-level replay capacity in transitions")
    compact_replay: bool = option(True, "store observations as float16 (halves replay memory; exact for 0/1 grids)")
    high_level_starts: int = option(
        20_000, "environment steps of low-level pre-training (random goals) before the high level learns"
    )
    high_exploration_steps: int = option(
        30_000, "environment steps over which the high level's epsilon decays after it starts"
    )
    low_updates: int = option(
        4, "low-level updates per update of the high level (navigation learns in updates, not samples)"
    )
    low_exploration_steps: int = option(40_000, "environment steps over which the low level's epsilon decays")
    low_freeze_success: float = option(
        0.0,
        "stop training the low level for good once its goal success over recent options reaches this "
        "(0: never; the original's --is-stop used 0.85)",
    )
    epsilon_start: float = option(1.0, "exploration rate at the start of each decay")
    epsilon_end: float = option(0.05, "exploration rate after the decay, at both levels")


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


def _some_allowed(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` where it allows something, all True where it rules everything out."""
    return mask | ~mask.any(-1, keepdim=True)


def _random_choice(allowed: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    scores = torch.rand(allowed.shape, generator=generator, device=allowed.device)
    return scores.masked_fill(~allowed, -1.0).argmax(-1)


def _decay(step: float, span: int, start: float, end: float) -> float:
    progress = min(max(step, 0.0) / max(span, 1), 1.0)
    return start + progress * (end - start)


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
    """Ind-hDQN, hCom, hQmix or low-level-only, as ``config.high_level`` says."""

    def __init__(
        self,
        config: HierConfig,
        spec: HierSpec,
        option_len: int,
        total_updates: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        check_choice("high_level", config.high_level, HIGH_LEVELS)
        check_choice("low_view", config.low_view, LOW_VIEWS)
        check_choice("team_reward", config.team_reward, TEAM_REWARDS)
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
        for name in ("gamma", "low_gamma", "elimination_threshold"):
            if not 0.0 <= getattr(config, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(config, name)}")
        if not 0.0 <= config.low_freeze_success <= 1.0:
            raise ValueError(f"low_freeze_success must be in [0, 1] (0 disables it), got {config.low_freeze_success}")
        if not 0.0 <= config.epsilon_end <= config.epsilon_start <= 1.0:
            raise ValueError(
                "epsilon_end and epsilon_start must satisfy 0 <= epsilon_end <= epsilon_start <= 1, "
                f"got {config.epsilon_end} and {config.epsilon_start}"
            )
        self.config = config
        self.spec = spec
        self.device = torch.device(device)
        self.option_len = option_len
        n_agents, n_goals = spec.n_agents, spec.n_goals
        self.low_actions = torch.tensor(spec.low_actions, dtype=torch.long, device=self.device)
        self.navigation_goals = np.array(spec.navigation_goals, dtype=np.int64)
        n_navigation = len(spec.navigation_goals)
        # Position of each goal among the navigation goals (one-step goals: 0, never read).
        self.navigation_index = np.zeros(n_goals, dtype=np.int64)
        self.navigation_index[self.navigation_goals] = np.arange(n_navigation)
        self.one_step_goals = np.setdiff1d(np.arange(n_goals), self.navigation_goals)
        view = None
        if config.low_view == "egocentric":
            if not spec.observation_grid or not spec.goal_grid:
                raise ValueError(
                    "low_view='egocentric' needs an environment whose observations and goal encodings start "
                    "with grids (observation_grid and goal_grid); use low_view='full'"
                )
            view = EgocentricView(spec.obs_dim, spec.goal_dim, spec.observation_grid, spec.goal_grid)
        self.low_net = GoalConditionedQ(
            spec.obs_dim, spec.goal_dim, n_agents, len(spec.low_actions), config.low_hidden_sizes,
            shared=config.low_shared, elimination=config.elimination, view=view,
        ).to(self.device)
        self.low_engine = UpdateEngine(
            {"low": self.low_net}, dataclasses.replace(config, lr=config.low_lr), total_updates * config.low_updates,
            targets=["low"], seed=seed,
        )
        self.learns_high = config.high_level != "random"
        obs_dtype = torch.float16 if config.compact_replay else torch.float32
        self.low_replay = ReplayBuffer(
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
            capacity=config.low_buffer_size, num_streams=1, device=self.device, seed=seed,
        )
        self.high_engine: UpdateEngine | None = None
        self.high_replay: ReplayBuffer | None = None
        if self.learns_high:
            if config.high_level == "comm":
                if not config.high_shared:
                    raise ValueError("high_shared=False needs the independent or qmix high level; comm shares its network")
                agents: nn.Module = CommGoalQ(spec.obs_dim, n_agents, n_goals, config.high_hidden_sizes)
            else:
                agents = IndependentGoalQ(
                    spec.obs_dim, n_agents, n_goals, config.high_hidden_sizes, shared=config.high_shared
                )
            modules: dict[str, nn.Module] = {"agents": agents.to(self.device)}
            if config.high_level == "qmix":
                modules["mixer"] = QMixer(n_agents, spec.state_dim, config.mixer_embed).to(self.device)
            self.high_engine = UpdateEngine(modules, config, total_updates, targets=list(modules), seed=seed + 1)
            high_fields = {
                "obs": Field((n_agents, spec.obs_dim), obs_dtype),
                "goal": Field((n_agents,), torch.long),
                "reward": Field((n_agents,)),
                "duration": Field((), torch.long),
                "next_obs": Field((n_agents, spec.obs_dim), obs_dtype),
                "next_goal_mask": Field((n_agents, n_goals), torch.bool),
                "next_free": Field((n_agents,), torch.bool),
                "terminated": Field((), torch.bool),
                "acting": Field((n_agents,), torch.bool),
            }
            if config.return_regularizer > 0:
                high_fields[RETURN_FIELD] = Field((n_agents,))
            if config.high_n_step > 1:
                high_fields[NEXT_GOAL_FIELD] = Field((n_agents,), torch.long)
            if config.high_level == "qmix":
                high_fields["state"] = Field((spec.state_dim,), obs_dtype)
                high_fields["next_state"] = Field((spec.state_dim,), obs_dtype)
            self.high_replay = ReplayBuffer(
                high_fields, capacity=config.high_buffer_size, num_streams=1, device=self.device, seed=seed + 1
            )
        self.options = Options(
            spec.num_envs, n_agents, n_goals, option_len, config.termination, config.reach_bonus, config.step_cost,
            config.hold_goals,
        )
        self.recorder = ACERRecorder(
            spec.num_envs, n_agents, spec.obs_dim, spec.state_dim, n_goals, option_len, config.gamma,
            augmented=config.acer_augmented, concurrent=config.acer_concurrent,
            episode_returns=self.learns_high and config.return_regularizer > 0,
            n_step=config.high_n_step if self.learns_high else 1,
        )
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed + 2)
        self.relabel_generator = torch.Generator(device=self.device)
        self.relabel_generator.manual_seed(seed + 4)
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
            env.num_envs, self.spec.n_agents, self.spec.n_goals, self.option_len, self.config.termination,
            hold=self.config.hold_goals,
        )
        self.eval_one_step = None
        self.eval_generator.manual_seed(self.eval_seed)

    # --- acting --------------------------------------------------------------------
    def high_epsilon(self, global_step: int) -> float:
        if global_step < self.config.high_level_starts:
            return 1.0
        c = self.config
        return _decay(global_step - c.high_level_starts, c.high_exploration_steps, c.epsilon_start, c.epsilon_end)

    def low_epsilon(self, global_step: int) -> float:
        c = self.config
        return _decay(global_step, c.low_exploration_steps, c.epsilon_start, c.epsilon_end)

    def high_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Each agent's Q over goals, ``(..., N, obs_dim) -> (..., N, n_goals)``."""
        if self.high_engine is None:
            raise RuntimeError("the low-level-only learner (high_level='random') has no high-level values")
        return self.high_engine.modules["agents"](obs)

    def chosen_values(self, obs: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """Each agent's value of its goal, ``Q_i(o_i, g_i)``: ``(M, N, obs_dim)``, ``(M, N)`` -> ``(M, N)``."""
        return self.high_values(obs.float()).gather(-1, goals[..., None]).squeeze(-1)

    @torch.no_grad()
    def goal_values(self, observation: torch.Tensor, state: torch.Tensor, goals: np.ndarray) -> torch.Tensor:
        """The learned value of the goals in force: hQmix's ``Q_tot(s, g)`` ``(num_envs,)``
        (of the team reward, as ``team_reward`` says), else each agent's ``Q_i(o_i, g_i)``
        ``(num_envs, N)``."""
        values = self.chosen_values(observation, torch.as_tensor(goals, device=self.device))
        if "mixer" in self.high_engine.modules:
            return self.high_engine.modules["mixer"](values, state.float())
        return values

    def team_quantity(self, per_agent: Any) -> Any:
        """hQmix's team quantity of per-agent rewards or returns (an array or a tensor),
        ``(..., N) -> (...)``: their mean or sum, as ``team_reward`` says."""
        return per_agent.mean(-1) if self.config.team_reward == "mean" else per_agent.sum(-1)

    def _choose_goals(
        self, observation: torch.Tensor, goal_mask: np.ndarray, epsilon: float, generator: torch.Generator
    ) -> np.ndarray:
        allowed = _some_allowed(torch.as_tensor(goal_mask, device=self.device))
        if self.learns_high and epsilon < 1.0:
            greedy = self.high_values(observation).masked_fill(~allowed, -torch.inf).argmax(-1)
            if epsilon > 0.0:
                explore = torch.rand(greedy.shape, generator=generator, device=self.device) < epsilon
                greedy = torch.where(explore, _random_choice(allowed, generator), greedy)
            return greedy.cpu().numpy()
        return _random_choice(allowed, generator).cpu().numpy()

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
        allowed = _some_allowed(obs["action_mask"].flatten(0, 1)[:, self.low_actions])
        q_values, elimination = self.low_net.q_and_elimination(
            obs["observation"].flatten(0, 1), encoding.flatten(0, 1), self._agent_index(num_envs)
        )
        if elimination is not None:
            kept = allowed & (torch.sigmoid(elimination) <= self.config.elimination_threshold)
            allowed = torch.where(kept.any(-1, keepdim=True), kept, allowed)
        choice = q_values.masked_fill(~allowed, -torch.inf).argmax(-1)
        if epsilon > 0.0:
            explore = torch.rand(choice.shape, generator=generator, device=self.device) < epsilon
            choice = torch.where(explore, _random_choice(allowed, generator), choice)
        low_primitive = self.low_actions[choice].view(num_envs, n_agents).cpu().numpy()
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
        self.recorder.observe(
            obs["observation"].cpu().numpy(), obs["state"].cpu().numpy(), self.options.goals, deciding
        )
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
            env.goal_reached(goals), feasible, pending.one_step, invalid, terminated | truncated,
            self._interrupt(goal_mask, pending.one_step),
        )
        if self.low_learning:
            self._store_low_level(env, transition, pending, terminated, terminated | truncated)
        rows = self.recorder.record(
            transition["reward"].cpu().numpy(), outcome,
            transition["next_observation"].cpu().numpy(), transition["next_state"].cpu().numpy(),
            goal_mask, terminated, truncated,
        )
        if self.high_replay is not None:
            self.high_replay.extend({name: rows[name] for name in self.high_replay.fields})
        finished = outcome.ended & ~pending.one_step
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
        next_encodings = np.where(done[:, None, None, None], encodings, self._navigation_encodings(env))
        rows = (torch.as_tensor(env_index, device=self.device), torch.as_tensor(agent_index, device=self.device))
        pursued = self.navigation_index[pending.goals[env_index, agent_index]]
        feasible = pending.goal_mask[env_index, agent_index][:, self.navigation_goals]
        self.low_replay.extend({
            "observation": transition["observation"][rows],
            "agent": rows[1],
            "action": pending.low_choice[rows],
            "next_observation": transition["next_observation"][rows],
            "next_action_mask": transition["next_action_mask"][..., self.low_actions][rows],
            "terminated": torch.as_tensor(terminated[env_index], device=self.device),
            "invalid": transition["invalid_action"][rows],
            "goal_index": torch.as_tensor(pursued, device=self.device),
            "goal_encodings": torch.as_tensor(encodings[env_index, agent_index], device=self.device),
            "next_goal_encodings": torch.as_tensor(next_encodings[env_index, agent_index], device=self.device),
            "feasible": torch.as_tensor(feasible, device=self.device),
            "reached": torch.as_tensor(reached[env_index, agent_index], device=self.device),
        })

    # --- learning ------------------------------------------------------------------
    def low_level_batch(self, rows: Tensors) -> dict[str, torch.Tensor]:
        """Low-level transitions from replay rows: the pursued goal, or with
        ``low_relabel`` for half of them another navigation goal feasible at the time,
        with that goal's intrinsic reward and termination."""
        index = rows["goal_index"]
        if self.config.low_relabel:
            other = _random_choice(_some_allowed(rows["feasible"]), self.relabel_generator)
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
        batch_size = self.config.batch_size
        self._freeze_low_level()
        metrics: dict[str, Any] = {"low_frozen": float(not self.low_learning)}
        if self.low_learning:
            for _ in range(self.config.low_updates):
                low = self.low_engine.update(self.low_loss, self.low_level_batch(self.low_replay.sample(batch_size)))
            metrics.update({f"low_{name}": value for name, value in low.items()})
            metrics["loss"] = low["loss"]
        if self.high_level_learning():
            high = self.high_engine.update(self.high_loss, self.high_replay.sample(batch_size))
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

    def low_loss(self, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        obs, goal, agent = batch["observation"].float(), batch["goal"].float(), batch["agent"]
        next_goal = batch["next_goal"].float()
        q_values, elimination = self.low_net.q_and_elimination(obs, goal, agent)
        action = batch["action"][:, None]
        q_taken = q_values.gather(1, action).squeeze(1)
        with torch.no_grad():
            next_obs = batch["next_observation"].float()
            next_read = self.low_net.read(next_obs, next_goal)
            next_target = self.low_engine.targets["low"](next_obs, next_goal, agent, next_read)
            selector = self.low_net(next_obs, next_goal, agent, next_read) if self.config.double_q else next_target
            best = selector.masked_fill(~_some_allowed(batch["next_action_mask"]), -torch.inf).argmax(1, keepdim=True)
            next_q = next_target.gather(1, best).squeeze(1)
            target = batch["reward"] + self.config.low_gamma * (~batch["terminal"]).float() * next_q
        loss = F.smooth_l1_loss(q_taken.float(), target.float())
        extras = {"q_mean": q_taken.detach().mean()}
        if elimination is not None:
            logits = elimination.gather(1, action).squeeze(1).float()
            elimination_loss = F.binary_cross_entropy_with_logits(logits, batch["invalid"].float())
            loss = loss + elimination_loss
            extras["elimination_loss"] = elimination_loss.detach()
        return loss, extras

    @torch.no_grad()
    def smdp_targets(self, batch: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        """Each agent's bootstrap value ``V_i(next)`` (M, N) and the factor in front of
        it, ``gamma**tau`` for rows that did not terminate and 0 for those that did (M,)."""
        agents, target_agents = self.high_engine.modules["agents"], self.high_engine.targets["agents"]
        next_obs = batch["next_obs"].float()
        # The goals the agents that do not pick anew continue where the row ends.
        goal = batch[NEXT_GOAL_FIELD] if NEXT_GOAL_FIELD in batch else batch["goal"]
        next_target = target_agents(next_obs)
        selector = agents(next_obs) if self.config.double_q else next_target
        best = selector.masked_fill(~_some_allowed(batch["next_goal_mask"]), -torch.inf).argmax(-1, keepdim=True)
        value = torch.where(
            batch["next_free"],
            next_target.gather(-1, best).squeeze(-1),
            next_target.gather(-1, goal[..., None]).squeeze(-1),
        )
        discount = self.config.gamma ** batch["duration"].float() * (~batch["terminated"]).float()
        return value, discount

    def high_loss(self, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q_taken = self.chosen_values(batch["obs"], batch["goal"])
        next_value, discount = self.smdp_targets(batch)
        weight = self.config.return_regularizer
        extras: dict[str, torch.Tensor] = {"q_mean": q_taken.detach().mean()}
        if "mixer" in self.high_engine.modules:
            q_total = self.high_engine.modules["mixer"](q_taken, batch["state"].float())
            with torch.no_grad():
                next_total = self.high_engine.targets["mixer"](next_value, batch["next_state"].float())
                target = self.team_quantity(batch["reward"]) + discount * next_total
            loss = F.smooth_l1_loss(q_total.float(), target.float())
            if weight > 0:
                gap = q_total.float() - self.team_quantity(batch[RETURN_FIELD])
                extras["return_gap"] = gap.detach().mean()
                loss = loss + weight * gap.square().mean()
        else:
            target = batch["reward"] + discount[:, None] * next_value
            acting = batch["acting"].float()
            errors = F.smooth_l1_loss(q_taken.float(), target.float(), reduction="none")
            if weight > 0:
                gap = q_taken.float() - batch[RETURN_FIELD]
                extras["return_gap"] = (gap * acting).sum().detach() / acting.sum().clamp(min=1.0)
                errors = errors + weight * gap.square()
            loss = (errors * acting).sum() / acting.sum().clamp(min=1.0)
        return loss, extras

    # --- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "low_engine": self.low_engine.state_dict(),
            "low_replay": self.low_replay.state_dict(),
            "options": self.options.state_dict(),
            "recorder": self.recorder.state_dict(),
            "generator": self.generator.get_state(),
            "relabel_generator": self.relabel_generator.get_state(),
            "global_step": self.global_step,
            "option_stats": self.option_stats.copy(),
            "low_frozen_at": self.low_frozen_at,
        }
        if self.high_engine is not None:
            state["high_engine"] = self.high_engine.state_dict()
            state["high_replay"] = self.high_replay.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.low_engine.load_state_dict(state["low_engine"])
        self.low_replay.load_state_dict(state["low_replay"])
        self.options.load_state_dict(state["options"])
        self.recorder.load_state_dict(state["recorder"])
        self.generator.set_state(state["generator"])
        self.relabel_generator.set_state(state["relabel_generator"])
        self.global_step = int(state["global_step"])
        self.option_stats = np.array(state["option_stats"], dtype=np.float64)
        self.low_frozen_at = state.get("low_frozen_at")  # absent in checkpoints from before the option
        if self.high_engine is not None:
            self.high_engine.load_state_dict(state["high_engine"])
            self.high_replay.load_state_dict(state["high_replay"])
