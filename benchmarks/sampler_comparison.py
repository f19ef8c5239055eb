"""Prioritised against uniform replay, same run, same budget: environment steps and wall
clock to each task's threshold, per sampler, over seeds.

    python benchmarks/sampler_comparison.py                       # DQN CartPole, Ind-hDQN and hQmix on room, seeds 0-2
    python benchmarks/sampler_comparison.py --tasks cartpole --seeds 5

Every run stops at its first greedy evaluation at the threshold (or at the task's
budget); both samplers of a task and seed run back to back, on one thread each
(``--workers`` runs that many at once). Each finished run is appended to ``--out`` as one
JSON line; the table is printed from them.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SAMPLERS = ("uniform", "prioritized")


@dataclass(frozen=True)
class Task:
    trainer: str
    args: tuple[str, ...]
    threshold: float
    total_steps: int
    eval_every: int


TASKS = {
    "cartpole": Task("dqn", ("--env", "CartPole-v1"), 475.0, 100_000, 2_500),
    "room_ind_hdqn": Task("ind_hdqn", (), 0.95, 150_000, 12_500),
    "room_hqmix": Task("hqmix", (), 0.95, 150_000, 12_500),
}


@dataclass
class Run:
    task: str
    sampler: str
    seed: int
    env_steps: int
    wall_seconds: float
    steps_to_target: int | None
    best_return: float


def train_task(
    task_name: str,
    run_name: str,
    extra: Sequence[str],
    seed: int,
    root: str,
    stop_at_target: bool = True,
    total_steps: int | None = None,
):
    """One run of ``task_name``'s trainer with ``extra`` options, on one thread, for ``total_steps``
    (default the task's budget); its TrainResult."""
    import importlib

    import torch

    torch.set_num_threads(1)
    task = TASKS[task_name]
    trainer = importlib.import_module(f"hmarl.trainers.{task.trainer}")
    return trainer.main(
        [
            *task.args,
            *extra,
            "--seed",
            str(seed),
            "--total-steps",
            str(total_steps or task.total_steps),
            "--eval-every",
            str(task.eval_every),
            "--target-value",
            str(task.threshold),
            *(["--stop-at-target"] if stop_at_target else []),
            "--device",
            "cpu",
            "--no-progress",
            "--run-name",
            run_name,
            "--log-dir",
            f"{root}/runs",
            "--checkpoint-dir",
            f"{root}/checkpoints",
        ]
    )


def run_one(task_name: str, sampler: str, seed: int, root: str) -> Run:
    result = train_task(task_name, f"samplers_{task_name}_{sampler}_seed{seed}", ("--sampler", sampler), seed, root)
    best = max((metrics["return"] for _, metrics in result.evaluations), default=math.nan)
    # The loop records the step of the first evaluation at the target; the run stopped there.
    return Run(task_name, sampler, seed, result.env_steps, result.wall_seconds, result.steps_to_target, best)


def mean_std(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{np.mean(values):,.0f} ± {np.std(values):,.0f}" if len(values) > 1 else f"{values[0]:,.0f}"


def print_table(runs: list[Run]) -> None:
    print(
        "| task | sampler | seeds | reached | env steps to target | wall s to target | wall s per 1,000 steps "
        "| best greedy return |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for task_name in dict.fromkeys(run.task for run in runs):
        for sampler in SAMPLERS:
            members = [run for run in runs if run.task == task_name and run.sampler == sampler]
            if not members:
                continue
            reached = [run for run in members if run.steps_to_target is not None]
            print(
                f"| {task_name} | {sampler} | {len(members)} | {len(reached)}/{len(members)} | "
                f"{mean_std([run.steps_to_target for run in reached])} | "
                f"{mean_std([run.wall_seconds for run in reached])} | "
                f"{np.median([1000 * run.wall_seconds / run.env_steps for run in members]):.2f} | "
                f"{np.mean([run.best_return for run in members]):.3g} |"
            )


def main(argv: Sequence[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS), help="tasks to compare on")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per task and sampler (0, 1, ...)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once, one thread each")
    parser.add_argument("--out", default="runs/sampler_comparison.jsonl", help="append each finished run here")
    parser.add_argument("--root", default="runs/sampler_comparison", help="logs and checkpoints go under here")
    parser.add_argument("--table-only", action="store_true", help="print the table of the runs in --out and stop")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.workers < 1:
        raise ValueError(f"--seeds and --workers must be >= 1, got {args.seeds} and {args.workers}")
    out = Path(args.out)
    if args.table_only:
        runs = [Run(**json.loads(line)) for line in out.read_text().splitlines()]
        print_table(runs)
        return runs
    jobs = [(task, sampler, seed) for task in args.tasks for seed in range(args.seeds) for sampler in SAMPLERS]
    runs = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool:
        for run in pool.map(run_one, *zip(*jobs, strict=True), [args.root] * len(jobs)):
            runs.append(run)
            with out.open("a") as stream:
                stream.write(json.dumps(asdict(run)) + "\n")
            print(f"finished {run.task} {run.sampler} seed {run.seed}: {run.steps_to_target}", flush=True)
    print_table(runs)
    return runs


if __name__ == "__main__":
    main()
