"""The hierarchical learners' shared configuration and the sizes of an environment with options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from hmarl.core import EngineConfig, SamplerConfig, SelectionConfig, option, redefault
from hmarl.core.sparse import SparseConfig
from hmarl.elimination import EliminationConfig
from hmarl.hier.options import TERMINATIONS

LOW_VIEWS = ("full", "egocentric")
HIGH_LEVEL_HELP = (
    "high level: independent (Ind-hDQN), comm (hCom), qmix (hQmix), random (low-level-only), or any other "
    "registered one (hmarl.hier.high_levels)"
)


def high_level_names() -> tuple[str, ...]:
    """The registered high levels' names (asked when a command line is built)."""
    from hmarl.hier.high_levels import HIGH_LEVELS

    return tuple(HIGH_LEVELS)


@runtime_checkable
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
            env.goal_primitive(np.full((env.num_envs, env.n_agents), goal, dtype=np.int64)).max() for goal in range(n_goals)
        ]
        low_actions = tuple(a for a in range(env.n_actions) if a not in primitives)
        navigation_goals = tuple(goal for goal, primitive in enumerate(primitives) if primitive < 0)
        if not low_actions or not navigation_goals:
            raise ValueError("every goal is a one-step goal; the low level has nothing to learn")
        return cls(
            num_envs or env.num_envs,
            env.n_agents,
            env.obs_dim,
            env.state_dim,
            env.n_actions,
            n_goals,
            env.goal_dim,
            low_actions,
            navigation_goals,
            tuple(getattr(env, "observation_grid", None) or ()),
            tuple(getattr(env, "goal_grid", None) or ()),
        )


@dataclass
class HierBaseConfig(SparseConfig, EngineConfig, SamplerConfig, SelectionConfig, EliminationConfig):
    """Options every hierarchical learner shares, on top of the update engine's (which the
    high level uses as they are and the low level with ``low_lr``), the replay sampler's
    (both levels) and the elimination component's (the low level, with ``elimination``).
    Each high level's own options are a section of :class:`hmarl.hier.HierConfig`."""

    high_level: str = option("independent", HIGH_LEVEL_HELP, choices=high_level_names)
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
        False,
        "navigation options keep their goal once reached (a defender stays with his man) and end only "
        "on timeout, infeasibility, interruption or the episode's end",
    )
    reach_bonus: float = option(1.0, "intrinsic reward for reaching the goal")
    step_cost: float = option(0.01, "intrinsic cost of every low-level step")
    acer_augmented: bool = option(True, "ACER augmentation: rows also start at every intermediate step of an option")
    acer_concurrent: bool = option(True, "ACER concurrency: joint rows between the decision points of any agent")
    return_regularizer: float = option(
        0.0,
        "high level: weight of a squared penalty on the distance between the learned value (Q_tot for "
        "hQmix, each Q_i otherwise) and the discounted return that followed in the replayed episode (RES, Pan et "
        "al. 2021), against overestimation; rows then enter replay when their episode ends (0: off)",
    )
    high_n_step: int = option(
        1,
        "high level: extend each row by the segments that followed it until it spans at least N steps and "
        "bootstrap there (n-step returns of the behaviour; needs concurrent ACER); rows then enter replay when "
        "their episode ends (1: bootstrap at the next decision point)",
    )
    high_hidden_sizes: tuple[int, ...] = option((128, 128), "hidden layer widths of the high-level Q network")
    high_shared: bool = option(
        True,
        "one high-level network for all agents (agent id as input); off: one per agent (independent and qmix high levels)",
    )
    low_hidden_sizes: tuple[int, ...] = option((128, 128), "hidden layer widths of the low-level Q network")
    low_view: str = option(
        "full",
        "low level's input: full (observation and goal as they are) or egocentric (grid observation "
        "and goal map re-centred on the agent; for layouts that change every episode)",
        choices=LOW_VIEWS,
    )
    low_shared: bool = option(True, "one low-level network for all agents (agent id as input); off: one per agent")
    low_relabel: bool = option(True, "low level: learn every navigation goal from each step (all-goals updating)")
    elimination: bool = option(
        False,
        "low level: learn which primitives have no effect and do not take them (AE-DQN's elimination "
        "network and bandit, with the --elimination-* options)",
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
    low_updates: int = option(4, "low-level updates per update of the high level (navigation learns in updates, not samples)")
    low_exploration_steps: int = option(40_000, "environment steps over which the low level's epsilon decays")
    low_freeze_success: float = option(
        0.0,
        "stop training the low level for good once its goal success over recent options reaches this "
        "(0: never; the original's --is-stop used 0.85)",
    )
    epsilon_start: float = option(1.0, "exploration rate at the start of each decay")
    epsilon_end: float = option(0.05, "exploration rate after the decay, at both levels")
