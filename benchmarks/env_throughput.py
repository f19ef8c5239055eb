"""Environment throughput in agent-steps per second (median of repeats).

For every case in ``CASES`` it measures

* the PettingZoo parallel API (one copy, random actions from the action spaces, dict
  in and out, resets included), next to ``mpe2``'s ``simple_spread_v3`` measured the
  same way in the same run as the reference;
* the batched core at each ``--num-envs``: ``core`` is one step of the rules with the
  observations and action masks an actor needs; ``core+state`` adds the global states;
  ``vector_env`` is the full batched face (global states, infos and auto-reset).

The ``puffer_*`` cases match the configurations PufferLib's C ``trash_pickup`` was
measured at (random layouts without walls, 300-step episodes): ``puffer_default``
10x10, 3 agents, 15 trash, 2 dumps; ``puffer_1bin`` 10x10, 4 agents, 20 trash, 1 dump;
``puffer_20x20`` 20x20, 8 agents, 40 trash, 2 dumps. Each runs with the full view and
the egocentric 11x11 window (PufferLib's crop, which it writes as 605 int8 values; ours
are 606 float32 values, and the face also writes the global state and action masks).

Pin one thread for figures that compare with single-core peers:

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/env_throughput.py --num-envs 1024

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


def _trash(layout: str, name: str | None = None, **kwargs: Any) -> EnvCase:
    return EnvCase(
        name=name or f"trash_collection {layout}",
        parallel_env=lambda: trash_collection_v0.parallel_env(layout=layout, **kwargs),
        vector_env=lambda num_envs: trash_collection_v0.vector_env(num_envs=num_envs, layout=layout, **kwargs),
    )


#: PufferLib's episodes last 300 steps (its ``max_steps`` default); so do these.
PUFFER_CONFIGS = {
    "puffer_default": dict(width=10, height=10, n_agents=3, n_trash=15, n_dumps=2, max_cycles=300),
    "puffer_1bin": dict(width=10, height=10, n_agents=4, n_trash=20, n_dumps=1, max_cycles=300),
    "puffer_20x20": dict(width=20, height=20, n_agents=8, n_trash=40, n_dumps=2, max_cycles=300),
}


#: PufferLib's C ``trash_pickup`` at 1,024 copies on one core of the 2-core machine
#: where these tables are made, built from its sdist (agent-steps/s); not re-run here.
PUFFER_MEASURED = {"puffer_default": 2.38e6, "puffer_1bin": 1.86e6, "puffer_20x20": 1.53e6}


def _puffer(key: str, view: str) -> EnvCase:
    config = PUFFER_CONFIGS[key]
    return _trash("random", f"trash {key} {view}", view=view, wall_density=0.0, **config)


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
    **{
        f"{key}_{view}": (lambda key=key, view=view: _puffer(key, view))
        for key in PUFFER_CONFIGS
        for view in ("full", "egocentric")
    },
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


def core_rate(venv: Any, steps: int, rng: np.random.Generator, clock: Clock, states: bool = False) -> float:
    """Rules + observations + action masks (+ global states if ``states``) of the batched
    core, episodes reset as they end."""
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
        if states:
            core.states()
    return steps * core.num_envs * core.n_agents / (clock() - start)


def core_state_rate(venv: Any, steps: int, rng: np.random.Generator, clock: Clock) -> float:
    return core_rate(venv, steps, rng, clock, states=True)


def vector_rate(venv: Any, steps: int, rng: np.random.Generator, clock: Clock) -> float:
    actions = rng.integers(0, venv.n_actions, (steps, venv.num_envs, venv.n_agents))
    start = clock()
    for step_actions in actions:
        venv.step(step_actions)
    return steps * venv.num_envs * venv.n_agents / (clock() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES), help="which environments to measure")
    parser.add_argument(
        "--num-envs", nargs="+", type=int, default=[1, 64, 1024, 4096], help="batch sizes for the batched core"
    )
    parser.add_argument("--repeats", type=int, default=5, help="measurements per cell; the median is shown")
    parser.add_argument("--parallel-steps", type=int, default=2000, help="steps per parallel-API measurement")
    parser.add_argument(
        "--batch-agent-steps", type=int, default=1_000_000, help="agent-steps per batched measurement (20 to 2000 steps)"
    )
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="wall time, or this process's CPU time (for busy machines)"
    )
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    rng = np.random.default_rng(0)
    print(f"{'environment':38s} {'face':12s} {'num_envs':>8s} {'agent-steps/s':>15s}")
    reference = None
    for key in args.cases:
        case = CASES[key]()
        rate = median_rate(lambda case=case: parallel_rate(case.parallel_env, args.parallel_steps, clock), args.repeats)
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
            rates: dict[str, float] = {}
            for face, measure in (("core", core_rate), ("core+state", core_state_rate), ("vector_env", vector_rate)):
                measure(venv, min(steps, 10), rng, clock)
                rates[face] = rate = median_rate(
                    lambda measure=measure, venv=venv, steps=steps: measure(venv, steps, rng, clock), args.repeats
                )
                note = ""
                if face == "vector_env":
                    note = f"  ({rate / rates['core']:.2f} of core, {rate / rates['core+state']:.2f} of core+state"
                    peer = PUFFER_MEASURED.get(key.rsplit("_", 1)[0])
                    note += f"; {rate / peer:.2f}x PufferLib's {peer / 1e6:.2f}M)" if peer else ")"
                print(f"{case.name:38s} {face:12s} {num_envs:8d} {rate:15,.0f}{note}")


if __name__ == "__main__":
    main()
