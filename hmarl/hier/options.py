"""Batched execution of options (goals) for every environment copy and agent at once.

An option is a goal from the environment's options interface (``venv.goal_names``)
pursued by the goal-conditioned low level until it terminates. An option ends when

* the agent reaches its goal (``venv.goal_reached``), unless options *hold* their
  goal: with ``hold=True`` a navigation option keeps its goal after reaching it (the
  low level stays with a target that moves, a defender with his man) and ends only by
  the other rules, so that a high-level decision covers a stretch of play rather than
  the few steps one approach takes,
* the goal stops being feasible (``venv.goal_mask`` turns False for it),
* it has run ``option_len`` steps,
* it is a one-step option (``venv.goal_primitive`` >= 0: pick, place, steal, block),
  which issues its primitive directly and ends after that step,
* it is interrupted: with interruption on, a navigation option ends as soon as a
  one-step goal is feasible for its agent, so that the high level can seize a chance
  that lasts a few steps (a block during a shooting motion) instead of finding it gone
  when the option ends (Sutton, Precup & Singh 1999, interrupting options), or
* the episode ends.

With ``termination="async"`` each agent picks a new goal when its own option ends;
with ``termination="sync"`` every agent of a copy picks together: when any agent's
option in a copy ends, all options in that copy end.

The low level's intrinsic reward is ``reach_bonus`` on the step that reaches the goal
and ``-step_cost`` on every step. A one-step option counts as reached when its
primitive had an effect (the environment's ``invalid_action`` is False). An option
*succeeded* when it reached its goal on some step of its run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TERMINATIONS = ("async", "sync")
NO_GOAL = -1


@dataclass(frozen=True)
class OptionOutcome:
    """What one environment step did to the running options, all ``(num_envs, n_agents)``."""

    intrinsic_reward: np.ndarray
    reached: np.ndarray
    """The goal was reached on this step."""
    ended: np.ndarray
    duration: np.ndarray
    succeeded: np.ndarray | None = None
    """The goal was reached on some step of the option so far (``Options.advance`` sets it)."""


class Options:
    """The running option of each agent in each copy."""

    def __init__(
        self,
        num_envs: int,
        n_agents: int,
        n_goals: int,
        option_len: int = 30,
        termination: str = "async",
        reach_bonus: float = 1.0,
        step_cost: float = 0.01,
        hold: bool = False,
    ) -> None:
        if termination not in TERMINATIONS:
            raise ValueError(f"termination={termination!r} is not valid; choose one of {list(TERMINATIONS)}")
        for name, value in (("num_envs", num_envs), ("n_agents", n_agents), ("n_goals", n_goals), ("option_len", option_len)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.n_goals = n_goals
        self.option_len = option_len
        self.termination = termination
        self.reach_bonus = np.float32(reach_bonus)
        self.step_cost = np.float32(step_cost)
        self.hold = bool(hold)
        self.goals = np.full((num_envs, n_agents), NO_GOAL, dtype=np.int64)
        self.elapsed = np.zeros((num_envs, n_agents), dtype=np.int64)
        self.reached_once = np.zeros((num_envs, n_agents), dtype=bool)

    def deciding(self) -> np.ndarray:
        """Agents that need a new goal now, ``(num_envs, n_agents)`` bool."""
        return self.goals == NO_GOAL

    def start(self, goals: np.ndarray, deciding: np.ndarray) -> None:
        """Begin ``goals`` for the ``deciding`` agents; the others keep their option."""
        goals = np.asarray(goals)
        if goals.shape != self.goals.shape:
            raise ValueError(f"goals must have shape {self.goals.shape}, got {goals.shape}")
        chosen = goals[deciding]
        if chosen.size and (chosen.min() < 0 or chosen.max() >= self.n_goals):
            raise ValueError(f"goals must lie in 0..{self.n_goals - 1}, got {chosen.min()}..{chosen.max()}")
        self.goals = np.where(deciding, goals, self.goals)
        self.elapsed[deciding] = 0
        self.reached_once[deciding] = False

    def actions(self, low_level_actions: np.ndarray, primitives: np.ndarray) -> np.ndarray:
        """The primitive each agent takes: a one-step option's own action, else the low level's."""
        return np.where(primitives >= 0, primitives, low_level_actions)

    def advance(
        self,
        reached: np.ndarray,
        feasible: np.ndarray,
        one_step: np.ndarray,
        invalid_action: np.ndarray,
        episode_done: np.ndarray,
        interrupt: np.ndarray | None = None,
    ) -> OptionOutcome:
        """Account for one environment step and end the options that terminate.

        ``reached`` and ``feasible`` describe each agent's current goal after the step
        (for copies that finished, the environment has already reset them, so their
        reach is not credited); ``one_step`` marks one-step options; ``invalid_action``
        is the environment's elimination signal; ``episode_done`` is ``(num_envs,)``;
        ``interrupt`` marks agents whose navigation option is cut short (not reached).
        """
        self.elapsed += 1
        done = np.broadcast_to(np.asarray(episode_done, dtype=bool)[:, None], self.goals.shape)
        reached = np.where(one_step, ~invalid_action, reached & ~done)
        self.reached_once |= reached
        ended = ~feasible | one_step | done | (self.elapsed >= self.option_len)
        if not self.hold:
            ended = ended | reached
        if interrupt is not None:
            ended = ended | interrupt
        if self.termination == "sync":
            ended = np.broadcast_to(ended.any(axis=1, keepdims=True), ended.shape)
        intrinsic = np.where(reached, self.reach_bonus, np.float32(0.0)) - self.step_cost
        duration = self.elapsed.copy()
        self.goals = np.where(ended, NO_GOAL, self.goals)
        return OptionOutcome(intrinsic.astype(np.float32), reached, ended.copy(), duration, self.reached_once.copy())

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"goals": self.goals.copy(), "elapsed": self.elapsed.copy(), "reached_once": self.reached_once.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.goals = np.array(state["goals"], dtype=np.int64)
        self.elapsed = np.array(state["elapsed"], dtype=np.int64)
        # Checkpoints from before holding goals: an option's reach ended it, so none had one.
        self.reached_once = np.array(state.get("reached_once", np.zeros_like(self.goals, dtype=bool)), dtype=bool)
