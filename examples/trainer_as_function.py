"""A trainer called as a function: its result holds the learning curve.

Every trainer's ``main`` takes the command line's arguments as a list and returns a
``TrainResult``: the run's name, steps, updates, wall clock and ``evaluations``, a list
of ``(environment step, metrics)`` for each greedy evaluation. This script trains DQN
on CartPole briefly and prints that curve.

    python examples/trainer_as_function.py --total-steps 4000
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hmarl.trainers import dqn
from hmarl.training import TrainResult


def main(argv: Sequence[str] | None = None) -> TrainResult:
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = [
        "--env",
        "CartPole-v1",
        "--total-steps",
        "4000",
        "--learning-starts",
        "500",
        "--eval-every",
        "1000",
        "--eval-episodes",
        "3",
        "--no-progress",
        "--checkpoint-every",
        "0",
        "--run-name",
        "as_function",
    ]
    result = dqn.main([*defaults, *argv])
    print(f"run {result.run_name}: {result.env_steps} steps, {result.updates} updates, {result.wall_seconds:.1f} s")
    print("step    greedy return")
    for step, metrics in result.evaluations:
        print(f"{step:>6d}  {metrics['return']:>13.1f}")
    return result


if __name__ == "__main__":
    main()
