"""How far a hierarchical learner's high-level values lie from the returns its greedy play gets.

Q-learning's maximum in the bootstrap overestimates, and a mixed value (hQmix) adds up
the maxima of several agents. This script plays greedy episodes with a trained
checkpoint (one per env copy, all stepped together) and compares, at every step of
every episode, the learned value of the goals in force with the discounted return that
followed in that episode (the high level's ``gamma``):

* hQmix: ``Q_tot(s, g)`` against the team's return (the mean or sum of the agents'
  rewards, as the checkpoint's ``team_reward`` says);
* the other learners: each agent's ``Q_i(o_i, g_i)`` against its own return.

It prints one row per checkpoint (the mean over all steps, and over the episodes' first
steps alone) and, given several, the mean and spread of each column.

    python benchmarks/value_bias.py checkpoints/<run>                    # newest checkpoint of a run
    python benchmarks/value_bias.py ck/run_seed0 ck/run_seed1 --episodes 1000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hmarl.hier.acer import discounted_returns
from hmarl.trainers import hierarchical
from hmarl.training import HelpFormatter, checkpoint_file
from hmarl.training.loop import attach_env, to_tensors

COLUMNS = ("value", "return", "bias", "value at start", "return at start")


@torch.no_grad()
def measure(path: str | Path, episodes: int, seed: int) -> dict[str, float]:
    """The columns of ``COLUMNS`` for the checkpoint at ``path`` over ``episodes`` greedy episodes."""
    agent, config, env = hierarchical.load_agent(path, episodes)
    if not agent.learns_high:
        raise ValueError(f"checkpoint {str(path)!r} is a low-level-only learner: its high level has no values")
    obs, _ = env.reset(seed=seed)
    attach_env(agent, env, evaluation=True)
    mixed = "mixer" in agent.high_engine.modules
    finished = np.zeros(env.num_envs, dtype=bool)
    values, rewards, alive = [], [], []
    while not finished.all():
        tensors = to_tensors(obs, agent.device)
        actions = agent.act_greedy(tensors)
        values.append(agent.goal_values(tensors["observation"], tensors["state"], agent.eval_options.goals).numpy())
        obs, reward, terminated, truncated, _ = env.step(actions.cpu().numpy())
        rewards.append(agent.team_quantity(reward) if mixed else reward)
        alive.append(~finished)
        finished |= terminated | truncated
    value, reward, live = np.array(values), np.array(rewards), np.array(alive)
    returns = discounted_returns(reward, live, config.gamma)
    mask = np.broadcast_to(live.reshape(live.shape + (1,) * (value.ndim - 2)), value.shape)
    return {
        "value": float(value[mask].mean()),
        "return": float(returns[mask].mean()),
        "bias": float((value - returns)[mask].mean()),
        "value at start": float(value[0].mean()),
        "return at start": float(returns[0].mean()),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint files, or run directories (their newest *.pt)")
    parser.add_argument("--episodes", type=int, default=500, help="greedy episodes per checkpoint (one per env copy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    print("| checkpoint | " + " | ".join(COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 1))
    results = {}
    for path in args.checkpoints:
        results[str(path)] = row = measure(path, args.episodes, args.seed)
        print(f"| {checkpoint_file(path)} | " + " | ".join(f"{row[key]:+.3f}" for key in COLUMNS) + " |")
    if len(results) > 1:
        cells = [
            f"{np.mean([r[key] for r in results.values()]):+.3f} ± {np.std([r[key] for r in results.values()]):.3f}"
            for key in COLUMNS
        ]
        print(f"| mean ± std over {len(results)} | " + " | ".join(cells) + " |")
    return results


if __name__ == "__main__":
    main()
