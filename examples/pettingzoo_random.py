"""Both environments through PettingZoo's parallel API, played by a random policy.

Each agent draws a uniformly random action among those its ``action_mask`` allows. The
script prints, per environment, the episodes played, their mean team return and length.

    python examples/pettingzoo_random.py --episodes 3 --seed 0
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from hmarl.envs import basketball_defense_v1, trash_collection_v0

ENVIRONMENTS = {
    "trash_collection_v0": lambda: trash_collection_v0.parallel_env(layout="room"),
    "basketball_defense_v1": lambda: basketball_defense_v1.parallel_env(),
}


def play(make_env, episodes: int, seed: int) -> tuple[float, float]:
    """Mean team return and mean length of ``episodes`` random episodes."""
    env = make_env()
    rng = np.random.default_rng(seed)
    returns, lengths = [], []
    for episode in range(episodes):
        observations, _ = env.reset(seed=seed + episode)
        total, steps = 0.0, 0
        while env.agents:
            actions = {agent: int(rng.choice(np.flatnonzero(observations[agent]["action_mask"]))) for agent in env.agents}
            observations, rewards, _, _, _ = env.step(actions)
            total += sum(rewards.values())
            steps += 1
        returns.append(total)
        lengths.append(steps)
    env.close()
    return float(np.mean(returns)), float(np.mean(lengths))


def main(argv: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3, help="episodes per environment")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode and of the policy")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    results = {}
    for name, make_env in ENVIRONMENTS.items():
        mean_return, mean_length = play(make_env, args.episodes, args.seed)
        results[name] = (mean_return, mean_length)
        print(f"{name}: {args.episodes} episodes, mean team return {mean_return:.2f}, mean length {mean_length:.1f}")
    return results


if __name__ == "__main__":
    main()
