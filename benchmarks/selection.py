"""Selective-Backprop and its kin against uniform and prioritised replay, in RL: wall clock
and environment steps to each task's threshold, final greedy return, and the rows that
went through a backward pass, per method, over seeds.

    python benchmarks/selection.py                                   # every task, method and seed 0-2
    python benchmarks/selection.py --tasks cartpole --seeds 3
    python benchmarks/selection.py --table-only --out runs/selection.jsonl

The tasks and their thresholds are ``sampler_comparison.py``'s (DQN on CartPole-v1,
Ind-hDQN and hQmix on trash collection's room). The selective methods run two ways:

``equal drawn``
    as in the paper, as many rows drawn per update as uniform replay draws: every drawn
    row gets a forward pass, and the method backpropagates the quarter it keeps
    (``--batch-size`` divided by ``beta + 1 = 4``; ``--base-batch-size`` with it, so the
    learning rate is the same);
``equal backward``
    as many rows backpropagated per update as uniform replay (the trainer's batch), about
    four times as many drawn and scored: whether the chosen rows teach more.

Every run goes the whole budget (``--total-steps``, default the task's), so the final
return is comparable; the step and the wall clock of its first greedy evaluation at the
threshold are recorded on the way. Runs go task by task, seed by seed, so a run cut short
still leaves whole seeds. Each finished run is appended to ``--out`` as one JSON line;
the table is printed from them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hmarl.core import check_choice

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_comparison import TASKS, mean_std, train_task

#: The method's options; the selective ones keep ``1 / (beta + 1)`` of the drawn rows.
METHODS: dict[str, tuple[str, ...]] = {
    "uniform": ("--sampler", "uniform"),
    "prioritized": ("--sampler", "prioritized"),
    "sb": ("--selection", "sb"),
    "stale-sb": ("--selection", "stale-sb"),
    "adapt-sb": ("--selection", "adapt-sb"),
}
SELECTIVE = ("sb", "stale-sb", "adapt-sb")
BETA = 3.0
COMPARISONS = ("equal drawn", "equal backward")


@dataclass
class Run:
    task: str
    method: str
    comparison: str
    seed: int
    env_steps: int
    wall_seconds: float
    steps_to_target: int | None
    seconds_to_target: float | None
    final_return: float
    backward_rows: int
    scored_rows: int
    cpu_seconds: float | None = None


def _batch_options(task_name: str, comparison: str) -> tuple[str, ...]:
    """At equal drawn rows the backward batch is the trainer's divided by ``beta + 1``."""
    if comparison != "equal drawn":
        return ()
    from hmarl.training import parse_config

    module = __import__(f"hmarl.trainers.{TASKS[task_name].trainer}", fromlist=["Config"])
    config = parse_config(module.Config, [])
    shrink = BETA + 1
    return (
        "--batch-size",
        str(round(config.batch_size / shrink)),
        "--base-batch-size",
        str(round(config.base_batch_size / shrink)),
    )


def run_name(task_name: str, method: str, comparison: str, seed: int) -> str:
    slug = comparison.replace("equal ", "") if method in SELECTIVE else "base"
    return f"selection_{task_name}_{method}_{slug}_seed{seed}"


def reached_in_log(run: Run, root: str, threshold: float) -> Run:
    """``run`` with the environment step and wall clock of its first greedy evaluation at
    ``threshold`` or above, read from its TensorBoard log: the wall clock is the
    ``train/wall_seconds`` logged last before that evaluation (every ``log_every`` updates)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = EventAccumulator(
        f"{root}/runs/{run_name(run.task, run.method, run.comparison, run.seed)}", size_guidance={"scalars": 0}
    )
    log.Reload()
    step = next((event.step for event in log.Scalars("eval/return") if event.value >= threshold), None)
    walls = [event.value for event in log.Scalars("train/wall_seconds") if step is not None and event.step <= step]
    seconds = walls[-1] if walls else None
    return dataclasses.replace(run, steps_to_target=step if seconds is not None else None, seconds_to_target=seconds)


def run_one(task_name: str, method: str, comparison: str, seed: int, root: str, total_steps: int) -> Run:
    extra = (*METHODS[method], *_batch_options(task_name, comparison))
    cpu = time.process_time()
    result = train_task(
        task_name,
        run_name(task_name, method, comparison, seed),
        extra,
        seed,
        root,
        stop_at_target=False,
        total_steps=total_steps,
    )
    final = result.evaluations[-1][1]["return"] if result.evaluations else math.nan
    return Run(
        task_name,
        method,
        comparison,
        seed,
        result.env_steps,
        result.wall_seconds,
        result.steps_to_target,
        result.seconds_to_target,
        final,
        result.backward_rows,
        result.scored_rows,
        time.process_time() - cpu,
    )


def jobs_for(tasks: Sequence[str], methods: Sequence[str], comparisons: Sequence[str], seeds: int) -> list[tuple]:
    """Task by task, seed by seed: the baselines once, each selective method per comparison."""
    jobs = []
    for task in tasks:
        for seed in range(seeds):
            for method in methods:
                for comparison in comparisons if method in SELECTIVE else ("-",):
                    jobs.append((task, method, comparison, seed))
    return jobs


def _cpu_share(runs: list[Run]) -> str:
    """How much of the wall clock the run had a core for (the machine may be shared)."""
    shares = [run.cpu_seconds / run.wall_seconds for run in runs if run.cpu_seconds is not None]
    return f"{np.mean(shares):.2f}" if shares else "-"


def print_table(runs: list[Run]) -> None:
    print(
        "| task | method | rows per update | seeds reached | env steps to target | wall s to target | "
        "wall-clock speed-up vs uniform | final greedy return | backward rows (M) | scored rows (M) | "
        "CPU s per wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for task in dict.fromkeys(run.task for run in runs):
        uniform = [
            run.seconds_to_target
            for run in runs
            if run.task == task and run.method == "uniform" and run.seconds_to_target is not None
        ]
        for method in METHODS:
            for comparison in dict.fromkeys(run.comparison for run in runs if run.method == method):
                members = [run for run in runs if (run.task, run.method, run.comparison) == (task, method, comparison)]
                if not members:
                    continue
                reached = [run for run in members if run.seconds_to_target is not None]
                seconds = [run.seconds_to_target for run in reached]
                speedup = f"{np.mean(uniform) / np.mean(seconds):.2f}x" if uniform and seconds else "-"
                finals = [run.final_return for run in members]
                print(
                    f"| {task} | {method} | {comparison} | {len(reached)}/{len(members)} | "
                    f"{mean_std([run.steps_to_target for run in reached])} | {mean_std(seconds)} | {speedup} | "
                    f"{np.mean(finals):.3g} ± {np.std(finals):.2g} | "
                    f"{np.mean([run.backward_rows for run in members]) / 1e6:.2f} | "
                    f"{np.mean([run.scored_rows for run in members]) / 1e6:.2f} | {_cpu_share(members)} |"
                )


def main(argv: Sequence[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS), help="tasks to compare on")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="methods")
    parser.add_argument(
        "--comparisons",
        nargs="+",
        default=["drawn", "backward"],
        choices=["drawn", "backward"],
        help="how the selective methods are matched to uniform replay",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per task and method (0, 1, ...)")
    parser.add_argument(
        "--total-steps",
        type=int,
        nargs="+",
        default=None,
        help="environment steps per run, one per task (default: each task's budget)",
    )
    parser.add_argument("--workers", type=int, default=1, help="runs at once, one thread each")
    parser.add_argument(
        "--out", default="runs/selection.jsonl", help="append each finished run here; runs already in it are not run again"
    )
    parser.add_argument("--root", default="runs/selection", help="logs and checkpoints go under here")
    parser.add_argument("--table-only", action="store_true", help="print the table of the runs in --out and stop")
    parser.add_argument(
        "--threshold",
        nargs="+",
        default=[],
        metavar="TASK=RETURN",
        help="with --table-only: the steps and wall clock to another greedy return, read from the "
        "runs' logs under --root (e.g. cartpole=300)",
    )
    args = parser.parse_args(argv)
    thresholds = {}
    for item in args.threshold:
        task, _, value = item.partition("=")
        check_choice("threshold", task, list(TASKS))
        thresholds[task] = float(value)
    if args.seeds < 1 or args.workers < 1:
        raise ValueError(f"--seeds and --workers must be >= 1, got {args.seeds} and {args.workers}")
    totals = args.total_steps or [TASKS[task].total_steps for task in args.tasks]
    if len(totals) != len(args.tasks) or min(totals) < 1:
        raise ValueError(f"--total-steps must give one count >= 1 per task ({args.tasks}), got {totals}")
    out = Path(args.out)
    if args.table_only:
        runs = [Run(**json.loads(line)) for line in out.read_text().splitlines()]
        if thresholds:
            runs = [reached_in_log(run, args.root, thresholds[run.task]) for run in runs if run.task in thresholds]
            print(f"target: greedy return {', '.join(f'{task} >= {value:g}' for task, value in thresholds.items())}")
        print_table(runs)
        return runs
    comparisons = [f"equal {name}" for name in args.comparisons]
    jobs = jobs_for(args.tasks, args.methods, comparisons, args.seeds)
    if out.exists():  # a stopped or extended benchmark runs only what --out lacks
        done = {
            (run["task"], run["method"], run["comparison"], run["seed"])
            for run in map(json.loads, out.read_text().splitlines())
        }
        jobs = [job for job in jobs if job not in done]
    budget = dict(zip(args.tasks, totals, strict=True))
    runs = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool:
        columns = [*zip(*jobs, strict=True), [args.root] * len(jobs), [budget[job[0]] for job in jobs]]
        for run in pool.map(run_one, *columns):
            runs.append(run)
            with out.open("a") as stream:
                stream.write(json.dumps(asdict(run)) + "\n")
            print(f"finished {run.task} {run.method} {run.comparison} seed {run.seed}: {run.steps_to_target}", flush=True)
    print_table(runs)
    return runs


if __name__ == "__main__":
    main()
