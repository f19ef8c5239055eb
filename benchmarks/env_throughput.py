"""Environment throughput in agent-steps per second (median of repeats).

For every case in ``CASES`` it measures

* the PettingZoo parallel API (one copy, random actions from the action spaces, dict
  in and out, resets included), next to ``mpe2``'s ``simple_spread_v3`` measured the
  same way in the same run as the reference;
* the batched core at each ``--num-envs``: ``core`` is one step of the rules with the
  observations and action masks an actor needs; ``vector_env`` is the full batched face
  (adds global states, infos and auto-reset).

Add an environment by appending a constructor of an :class:`EnvCase` to ``CASES``.
``--clock cpu`` counts the process's CPU time instead of wall time, which keeps the
figures meaningful on a machine shared with other jobs.

    python benchmarks/env_throughput.py                # all cases
    python benchmarks/env_throughput.py --cases room   # a subset
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hmarl.envs import basketball_defense_v1, trash_collection_v0


@dataclass(frozen=True)
class EnvCase:
    """One row group of the table: how to build the env's faces."""

    name: str
    parallel_env: Callable[[], Any]
    vector_env: Callable[[int], Any] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


def _trash(layout: str) -> EnvCase:
    return EnvCase(
        name=f"trash_collection {layout}",
        parallel_env=lambda: trash_collection_v0.parallel_env(layout=layout),
        vector_env=lambda num_envs: trash_collection_v0.vector_env(num_envs=num_envs, layout=layout),
    )


def _basketball(n_players: int) -> EnvCase:
    return EnvCase(
        name=f"basketball_defense {n_players}v{n_players}",
        parallel_env=lambda: basketball_defense_v1.parallel_env(n_players=n_players),
        vector_env=lambda num_envs: basketball_defense_v1.vector_env(num_envs=num_envs, n_players=n_players),
    )


def _simple_spread() -> EnvCase:
    from mpe2 import simple_spread_v3

    return EnvCase(name="mpe2 simple_spread_v3 (reference)", parallel_env=simple_spread_v3.parallel_env)


CASES: dict[str, Callable[[], EnvCase]] = {
    "reference": _simple_spread,
    "room": lambda: _trash("room"),
    "ring": lambda: _trash("ring"),
    "coordination": lambda: _trash("coordination"),
    "random": lambda: _trash("random"),
    "basketball": lambda: _basketball(3),
}


def median_rate(run: Callable[[], float], repeats: int) -> float:
    """Median over ``repeats`` of ``run()``, which returns agent-steps per second."""
    return statistics.median(run() for _ in range(repeats))


Clock = Callable[[], float]


def parallel_rate(make_env: Callable[[], Any], steps: int, clock: Clock) -> float:
    env = make_env()
    env.reset(seed=0)
    n_agents = len(env.possible_agents)
    start = clock()
    for _ in range(steps):
        if not env.agents:
            env.reset()
        env.step({agent: env.action_space(agent).sample() for agent in env.agents})
    return steps * n_agents / (clock() - start)


def core_rate(venv: Any, steps: int, rng: np.random.Generator, clock: Clock) -> float:
    """Rules + observations + action masks of the batched core, episodes reset as they end."""
    core = venv.core
    actions = rng.integers(0, core.n_actions, (steps, core.num_envs, core.n_agents))
    start = clock()
    for step_actions in actions:
        _, terminated, _ = core.step_rules(step_actions)
        core.t += 1
        done = terminated | (core.t >= core.max_cycles)
        if done.any():
            core.reset_copies(np.flatnonzero(done))
        core.observations()
        core.action_masks()
    return steps * core.num_envs * core.n_agents / (clock() - start)


def vector_rate(venv: Any, steps: int, rng: np.random.Generator, clock: Clock) -> float:
    actions = rng.integers(0, venv.n_actions, (steps, venv.num_envs, venv.n_agents))
    start = clock()
    for step_actions in actions:
        venv.step(step_actions)
    return steps * venv.num_envs * venv.n_agents / (clock() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES),
                        help="which environments to measure")
    parser.add_argument("--num-envs", nargs="+", type=int, default=[1, 64, 1024, 4096],
                        help="batch sizes for the batched core")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per cell; the median is shown")
    parser.add_argument("--parallel-steps", type=int, default=2000, help="steps per parallel-API measurement")
    parser.add_argument("--batch-agent-steps", type=int, default=1_000_000,
                        help="agent-steps per batched measurement (20 to 2000 steps)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (for busy machines)")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    rng = np.random.default_rng(0)
    print(f"{'environment':38s} {'face':12s} {'num_envs':>8s} {'agent-steps/s':>15s}")
    reference = None
    for key in args.cases:
        case = CASES[key]()
        rate = median_rate(
            lambda: parallel_rate(case.parallel_env, args.parallel_steps, clock), args.repeats
        )
        note = ""
        if key == "reference":
            reference = rate
        elif reference is not None:
            note = f"  ({rate / reference:.1f}x reference)"
        print(f"{case.name:38s} {'parallel':12s} {1:8d} {rate:15,.0f}{note}")
        if case.vector_env is None:
            continue
        for num_envs in args.num_envs:
            venv = case.vector_env(num_envs)
            venv.reset(seed=0)
            steps = int(np.clip(args.batch_agent_steps // (num_envs * venv.n_agents), 20, 2000))
            for face, measure in (("core", core_rate), ("vector_env", vector_rate)):
                measure(venv, min(steps, 10), rng, clock)
                rate = median_rate(lambda: measure(venv, steps, rng, clock), args.repeats)
                print(f"{case.name:38s} {face:12s} {num_envs:8d} {rate:15,.0f}")


if __name__ == "__main__":
    main()
