"""Sanity table of basketball_defense_v1: scripted defenses against every offense skill.

For each skill level and defense (stand still, random legal actions, man-to-man)
plays ``--possessions`` possessions and prints points per possession, the share of
possessions the offense scores on, and the stop, miss, block and steal rates (shares
of possessions). Run: ``python benchmarks/basketball_sanity.py``.
"""

from __future__ import annotations

import argparse

import numpy as np

from hmarl.envs import basketball_defense_v1
from hmarl.envs.basketball_defense import OUTCOMES, SKILLS
from hmarl.envs.basketball_defense.scripted import DEFENSES


def play(skill: str, defense: str, possessions: int, num_envs: int, n_players: int, seed: int) -> dict[str, float]:
    venv = basketball_defense_v1.vector_env(num_envs=num_envs, n_players=n_players, skill=skill)
    venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    policy = DEFENSES[defense]
    outcomes: list[np.ndarray] = []
    points: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    finished = 0
    while finished < possessions:
        _, _, terminations, truncations, infos = venv.step(policy(venv.core, rng))
        done = terminations | truncations
        outcomes.append(infos["outcome"][done])
        points.append(infos["points_allowed"][done])
        lengths.append(infos["episode_length"][done])
        finished += int(done.sum())
    outcome = np.concatenate(outcomes)[:possessions]
    allowed = np.concatenate(points)[:possessions]
    stops = np.isin(outcome, [OUTCOMES.index(name) for name in ("miss", "block", "steal", "shot_clock")])
    return {
        "points/poss": allowed.mean(),
        "scored": (allowed > 0).mean(),
        "stop": stops.mean(),
        "miss": (outcome == OUTCOMES.index("miss")).mean(),
        "block": (outcome == OUTCOMES.index("block")).mean(),
        "steal": (outcome == OUTCOMES.index("steal")).mean(),
        "clock": (outcome == OUTCOMES.index("shot_clock")).mean(),
        "length s": np.concatenate(lengths)[:possessions].mean() / 10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--possessions", type=int, default=10_000, help="possessions per skill level and defense")
    parser.add_argument("--num-envs", type=int, default=1000, help="copies stepped at once")
    parser.add_argument("--n-players", type=int, default=3, help="players per side")
    parser.add_argument("--seed", type=int, default=0, help="seed of the environment and the random defense")
    args = parser.parse_args()
    columns = ["points/poss", "scored", "stop", "miss", "block", "steal", "clock", "length s"]
    print(f"basketball_defense_v1, {args.n_players}v{args.n_players}, {args.possessions} possessions per row")
    print(f"| skill | defense | {' | '.join(columns)} |")
    print("|" + "---|" * (len(columns) + 2))
    for skill in SKILLS:
        for defense in DEFENSES:
            row = play(skill, defense, args.possessions, args.num_envs, args.n_players, args.seed)
            print(f"| {skill} | {defense} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
