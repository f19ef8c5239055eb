"""Learned against scripted high levels over one trained low level, on basketball.

A hierarchical learner's result on ``basketball_defense_v1`` mixes two skills: how well
its low level carries out goals, and how well its high level picks them. This script
keeps a trained checkpoint's low level and swaps its high level for

* ``learned``: the checkpoint's own (random goals for a low-level-only checkpoint);
* ``learned_always_block`` and ``learned_never_block``: the checkpoint's own, except
  that a defender who may block (at a shot's release, within reach) always blocks, or
  never does: what the learned high level's block decisions are worth;
* ``random``: goals drawn uniformly among the feasible ones (the low-level-only baseline);
* ``man_to_man`` and ``help``: the scripted high levels of
  :mod:`hmarl.envs.basketball_defense.scripted` (guard your own man, intercept passes,
  block at the release; ``help`` also sends the weak-side defender to the rim).

Each row is one greedy evaluation over ``--possessions`` possessions (one per copy, all
stepped together, the same possessions for every row: one seed starts them), with the
standard error of the stop rate. Given several checkpoints
(seeds of one learner, say), it also prints the mean and spread over them.

Under the ``learned`` high level it also counts where the defenders' time goes: for each
defender, the share of the steps in play he spends pursuing each goal, and for each goal
the share of the steps at which two or more defenders pursue it at once (two defenders
guarding one man, or waiting at the rim together, while someone else is left open).

    python benchmarks/basketball_high_levels.py checkpoints/<run>            # newest checkpoint of a run
    python benchmarks/basketball_high_levels.py ck/run_seed0 ck/run_seed1 --possessions 2000
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmarl.envs.basketball_defense import possession_rates
from hmarl.envs.basketball_defense.scripted import GOAL_POLICIES
from hmarl.hier import GoalPolicy, HierarchicalAgent
from hmarl.trainers import hierarchical
from hmarl.training import HelpFormatter, checkpoint_file
from hmarl.training.loop import evaluate

# The learned high level with its block decisions overridden: always (True) or never (False).
BLOCK_OVERRIDES = {"learned_always_block": True, "learned_never_block": False}
HIGH_LEVELS = ("learned", *BLOCK_OVERRIDES, "random", *GOAL_POLICIES)
COLUMNS = ("stop", "miss", "block", "steal", "points")


class GoalTime:
    """Steps each agent spends pursuing each goal, counted over the copies of a batched
    evaluation until their first episode ends (a copy that finished restarts at step 0)."""

    def __init__(self, n_agents: int, goal_names: Sequence[str]) -> None:
        self.goal_names = list(goal_names)
        n_goals = len(self.goal_names)
        self.steps = 0
        self.per_agent = np.zeros((n_agents, n_goals))
        self.shared = np.zeros(n_goals)
        self._last_t: np.ndarray | None = None
        self._finished: np.ndarray | None = None

    def add(self, goals: np.ndarray, t: np.ndarray) -> None:
        """Count the goals ``(num_envs, N)`` in force at the copies' episode steps ``t``."""
        if self._last_t is None:
            self._finished = np.zeros(len(t), dtype=bool)
        else:
            self._finished |= t < self._last_t
        self._last_t = t.copy()
        pursues = goals[~self._finished, :, None] == np.arange(self.per_agent.shape[1])  # (copy, agent, goal)
        self.per_agent += pursues.sum(0)
        self.shared += (pursues.sum(1) >= 2).sum(0)
        self.steps += len(pursues)

    def shares(self) -> np.ndarray:
        """``(N + 1, n_goals)``: each agent's share of the steps on each goal, then the
        share of the steps at which two or more agents pursue each goal."""
        return np.vstack([self.per_agent, self.shared]) / max(self.steps, 1)


class _WithHighLevel:
    """``agent`` acting greedily with ``goal_policy`` in place of its high level, or with
    its own high level whose block decisions ``always_block`` overrides (if not None);
    ``goal_time``, if given, counts the goals in force at every step."""

    def __init__(
        self,
        agent: HierarchicalAgent,
        goal_policy: GoalPolicy | None,
        always_block: bool | None = None,
        goal_time: GoalTime | None = None,
    ) -> None:
        self.agent = agent
        self.goal_policy = goal_policy
        self.always_block = always_block
        self.goal_time = goal_time

    def attach_env(self, env: Any, evaluation: bool) -> None:
        self.agent.attach_env(env, evaluation)

    def act_greedy(self, obs: Any) -> torch.Tensor:
        if self.always_block is None:
            actions = self.agent.act_greedy(obs, self.goal_policy)
        else:
            actions = self.agent.act_greedy(obs, lambda mask: self._overriding_block(obs, mask))
        if self.goal_time is not None:
            self.goal_time.add(self.agent.eval_options.goals, self.agent.eval_env.core.t)
        return actions

    def _overriding_block(self, obs: Any, mask: np.ndarray) -> np.ndarray:
        """The agent's greedy goals among the feasible ones (random ones without a learned
        high level), blocking wherever it may (always) or never choosing to."""
        block = self.agent.eval_env.goal_names.index("block")
        allowed = mask.copy()
        if not self.always_block:
            allowed[..., block] = False
        goals = self.agent.greedy_goals(obs["observation"], allowed)
        return np.where(mask[..., block], block, goals) if self.always_block else goals


def load_agent(path: str | Path, num_envs: int) -> tuple[HierarchicalAgent, Any]:
    """The hierarchical agent of a basketball checkpoint and an evaluation env of ``num_envs`` copies."""
    agent, config, env = hierarchical.load_agent(path, num_envs)
    if config.env not in ("basketball_defense_v1", "basketball_defense_v0"):
        raise ValueError(f"checkpoint {str(path)!r} was trained on {config.env}, not basketball_defense_v1 (or its v0)")
    return agent, env


def make_goal_policy(name: str, env: Any, seed: int) -> GoalPolicy | None:
    """The high level ``name`` (one of ``HIGH_LEVELS``) as a goal policy on ``env``; None for
    ``learned`` and its block overrides (the agent's own high level)."""
    if name == "learned" or name in BLOCK_OVERRIDES:
        return None
    if name == "random":
        rng = np.random.default_rng(seed)
        return lambda mask: np.argmax(np.where(mask, rng.random(mask.shape), -1.0), axis=-1)
    if name not in GOAL_POLICIES:
        raise ValueError(f"high level {name!r} is unknown; choose from {HIGH_LEVELS}")
    scripted: Callable[[Any, np.ndarray], np.ndarray] = GOAL_POLICIES[name]
    return lambda mask: scripted(env.core, mask)


def compare(
    path: str | Path, high_levels: Sequence[str], possessions: int, seed: int
) -> tuple[dict[str, dict[str, float]], GoalTime | None]:
    """Rates of every high level over the low level of the checkpoint at ``path``, and the
    goal time under the learned high level (None if ``learned`` is not among ``high_levels``)."""
    agent, env = load_agent(path, possessions)
    rows, learned_time = {}, None
    for name in high_levels:
        goal_time = GoalTime(env.n_agents, env.goal_names) if name == "learned" else None
        acting = _WithHighLevel(agent, make_goal_policy(name, env, seed), BLOCK_OVERRIDES.get(name), goal_time)
        metrics = evaluate(acting, env, seed, agent.device)
        rows[name] = possession_rates(metrics)
        if goal_time is not None:
            learned_time = goal_time
    return rows, learned_time


def _goal_table(title: str, shares: np.ndarray, goal_names: Sequence[str]) -> str:
    lines = [f"\n### {title}", "| defender | " + " | ".join(goal_names) + " |", "|" + "---|" * (len(goal_names) + 1)]
    labels = [str(i) for i in range(len(shares) - 1)] + ["two or more at once"]
    lines += [f"| {label} | " + " | ".join(f"{v:.2f}" for v in row) + " |" for label, row in zip(labels, shares, strict=True)]
    return "\n".join(lines)


def _row(name: str, rates: dict[str, float], possessions: int) -> str:
    stop = rates["stop"]
    error = math.sqrt(max(stop * (1.0 - stop), 0.0) / possessions)
    cells = [f"{stop:.3f} ± {error:.3f}", *(f"{rates[key]:.3f}" for key in COLUMNS[1:])]
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Prints the tables; returns ``{"rates": {checkpoint: {high level: rates}}, "goal_time":
    {checkpoint: GoalTime.shares() under the learned high level}}``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint files, or run directories (their newest *.pt)")
    parser.add_argument(
        "--high-levels",
        nargs="+",
        default=list(HIGH_LEVELS),
        choices=HIGH_LEVELS,
        help="high levels to compare over each checkpoint's low level",
    )
    parser.add_argument("--possessions", type=int, default=1000, help="possessions per row (one per env copy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation possessions and of random goals")
    args = parser.parse_args(argv)
    if args.possessions < 1:
        parser.error(f"--possessions must be >= 1, got {args.possessions}")
    header = "| high level | stop rate (± s.e.) | miss-shot rate | block-shot rate | steal rate | points/possession |"
    results, goal_time, goal_names = {}, {}, set()
    for path in args.checkpoints:
        results[str(path)], learned_time = compare(path, args.high_levels, args.possessions, args.seed)
        print(f"\n## {checkpoint_file(path)} ({args.possessions} possessions per row)\n{header}\n|" + "---|" * 6)
        for name, rates in results[str(path)].items():
            print(_row(name, rates, args.possessions))
        if learned_time is not None:
            goal_time[str(path)] = learned_time.shares()
            goal_names.add(tuple(learned_time.goal_names))
            print(
                _goal_table(
                    "share of the steps in play on each goal, learned high level",
                    goal_time[str(path)],
                    learned_time.goal_names,
                )
            )
    if len(results) > 1:
        print(f"\n## mean ± std over {len(results)} checkpoints\n| high level | " + " | ".join(COLUMNS) + " |\n|" + "---|" * 6)
        for name in args.high_levels:
            cells = []
            for key in COLUMNS:
                values = [rows[name][key] for rows in results.values()]
                cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
        if len(goal_time) > 1 and len(goal_names) == 1:  # the same goals in every checkpoint
            mean = np.mean(list(goal_time.values()), axis=0)
            title = f"share of the steps on each goal, mean over {len(goal_time)} checkpoints"
            print(_goal_table(title, mean, next(iter(goal_names))))
    return {"rates": results, "goal_time": goal_time}


if __name__ == "__main__":
    main()
