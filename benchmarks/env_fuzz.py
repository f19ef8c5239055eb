"""Fuzzing of the environments: many copy-steps over random configurations, checking
the invariants of :func:`hmarl.envs.conformance.assert_invariants` at every step
(observations and states inside their spaces, finite rewards, 0/1 masks, and every
masked action that is taken reported in ``invalid_action``).

Each round draws an environment and its arguments - trash collection on random
layouts of random sizes, agent, trash and dump counts, wall densities, views, extra
actions and reward modes, or basketball with random team sizes, skills, views and
shot clocks - and steps it with random actions, masked or not. A crash or a violated
invariant stops the run with the round's arguments and seed.

    OMP_NUM_THREADS=1 python benchmarks/env_fuzz.py --copy-steps 100_000_000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from hmarl import envs
from hmarl.envs import conformance
from hmarl.envs.basketball_defense.rules import SKILLS


def draw_trash(rng: np.random.Generator) -> dict[str, Any]:
    while True:
        # Log-uniform sides in [2, 32]: small grids as often as large ones in ratio, which
        # keeps the copy-steps of the full view, whose cost grows with cells x agents,
        # within a run of under an hour on one core.
        width, height = (int(v) for v in np.exp(rng.uniform(np.log(2), np.log(33), 2)))
        capacity = width * height // 2
        if capacity >= 3:
            break
    n_agents = int(rng.integers(1, min(16, capacity - 2) + 1))
    n_dumps = int(rng.integers(1, min(4, capacity - n_agents - 1) + 1))
    n_trash = int(rng.integers(1, min(60, capacity - n_agents - n_dumps) + 1))
    kwargs: dict[str, Any] = dict(
        layout="random",
        width=width,
        height=height,
        n_agents=n_agents,
        n_trash=n_trash,
        n_dumps=n_dumps,
        wall_density=float(rng.uniform(0.0, 0.45)),
        max_cycles=int(rng.integers(1, 150)),
        extra_actions=int(rng.integers(0, 3)),
        reward_mode=str(rng.choice(["individual", "shared"])),
    )
    if rng.random() < 0.5:
        kwargs.update(view="egocentric", view_size=int(rng.choice([3, 5, 7, 11])))
    return kwargs


def draw_basketball(rng: np.random.Generator) -> dict[str, Any]:
    return dict(
        n_players=int(rng.integers(1, 6)),
        skill=str(rng.choice(list(SKILLS))),
        view=str(rng.choice(["full", "matched"])),
        shot_clock_s=float(rng.uniform(1.0, 24.0)),
    )


def draw_fixed_trash(rng: np.random.Generator) -> dict[str, Any]:
    return dict(
        layout=str(rng.choice(["room", "ring", "coordination"])), reward_mode=str(rng.choice(["individual", "shared"]))
    )


DRAWS = {
    "trash_collection_v0": (draw_trash, draw_fixed_trash),
    "basketball_defense_v1": (draw_basketball,),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copy-steps", type=float, default=100e6, help="stop after this many copy-steps")
    parser.add_argument("--num-envs", type=int, default=512, help="copies per round")
    parser.add_argument("--steps", type=int, default=300, help="steps per round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    counts: dict[str, int] = {name: 0 for name in DRAWS}
    rounds = 0
    start = time.perf_counter()
    while sum(counts.values()) < args.copy_steps:
        name = str(rng.choice(list(DRAWS)))
        draws = DRAWS[name]
        kwargs = draws[int(rng.integers(len(draws)))](rng)
        masked, seed = bool(rng.random() < 0.5), int(rng.integers(2**31))
        try:
            counts[name] += conformance.assert_invariants(
                envs.get(name), kwargs, num_envs=args.num_envs, steps=args.steps, masked=masked, seed=seed
            )
        except Exception as error:
            raise SystemExit(f"round {rounds}: {name}({kwargs}), masked={masked}, seed={seed}: {error!r}") from error
        rounds += 1
        if rounds % 50 == 0:
            done = sum(counts.values())
            print(f"{rounds} rounds, {done:,} copy-steps, {done / (time.perf_counter() - start):,.0f}/s", flush=True)
    elapsed = time.perf_counter() - start
    print(f"{'environment':24s} {'copy-steps':>14s}")
    for name, count in counts.items():
        print(f"{name:24s} {count:14,d}")
    print(f"{rounds} rounds, {sum(counts.values()):,} copy-steps in {elapsed:,.0f} s: 0 crashes, 0 invariant violations")


if __name__ == "__main__":
    main()
