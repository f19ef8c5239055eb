"""Hyperparameter search: BOIL against random search, TPE and ASHA at equal wall clock.

Each searcher runs --repeats studies per problem, each with the same wall-clock budget
on the same local Ray instance (--workers trials at once). A study's score is the best
final greedy evaluation of its finished trials; the table gives each searcher's best
found score at the end, and the time BOIL and the best baseline take to reach the best
baseline's final score (median over repetitions).

    python benchmarks/tuning.py --problems cartpole --budget 120 --repeats 5

Problems:
- cartpole: DQN on CartPole-v1 over BOIL's own demo space: gamma in [0.8, 1], learning
  rate in [1e-6, 1e-2] (log), training length in steps;
- room: Ind-hDQN on trash collection's room over the high- and low-level learning rates
  in [1e-5, 1e-3] (log) and the batch size in [32, 256], training length 10,000-40,000
  steps (a greedy evaluation of 20 episodes every 5,000; the default settings reach the
  room's threshold at 37,500-50,000 steps, so the range separates fast learners from slow).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROBLEMS = {
    "cartpole": {
        "algorithm": "dqn",
        "params": {"gamma": {"low": 0.8, "high": 1.0}, "lr": {"low": 1e-6, "high": 1e-2, "log": True}},
        "length": {"field": "total_steps", "low": 1000, "high": 8000},
        "options": [
            "--env",
            "CartPole-v1",
            "--eval-every",
            "1000",
            "--eval-episodes",
            "5",
            "--learning-starts",
            "500",
            "--device",
            "cpu",
        ],
    },
    "room": {
        "algorithm": "ind_hdqn",
        "params": {
            "lr": {"low": 1e-5, "high": 1e-3, "log": True},
            "low_lr": {"low": 1e-5, "high": 1e-3, "log": True},
            "batch_size": {"low": 32, "high": 256},
        },
        "length": {"field": "total_steps", "low": 10000, "high": 40000},
        "options": ["--eval-every", "5000", "--eval-episodes", "20", "--device", "cpu"],
    },
}
SEARCHERS = ("boil", "random", "tpe", "asha")


def first_time(points: list[tuple[float, float]], score: float) -> float:
    """Seconds until a best-so-far curve first reaches ``score`` (inf: never)."""
    return next((seconds for seconds, best in points if best >= score), math.inf)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default="cartpole,room", help="comma-separated: " + ", ".join(PROBLEMS))
    parser.add_argument("--searchers", default=",".join(SEARCHERS), help="comma-separated: " + ", ".join(SEARCHERS))
    parser.add_argument("--budget", type=float, default=120.0, help="wall-clock seconds of each study")
    parser.add_argument("--repeats", type=int, default=5, help="studies per searcher and problem (seeds 0..n-1)")
    parser.add_argument("--workers", type=int, default=2, help="trials at once (local Ray CPUs)")
    parser.add_argument("--storage", default="", help="Ray Tune storage (default: a temporary directory)")
    parser.add_argument("--jsonl", default="", help="append each study's best-so-far curve to this file")
    parser.add_argument(
        "--plot", default="", help="PNG of best-so-far against wall clock (one per problem: <stem>_<problem>.png)"
    )
    args = parser.parse_args(argv)
    problems = [name for name in args.problems.split(",") if name]
    searchers = [name for name in args.searchers.split(",") if name]
    for name in problems:
        if name not in PROBLEMS:
            parser.error(f"problems: {name!r} is not valid; choose from {sorted(PROBLEMS)}")
    for name in searchers:
        if name not in SEARCHERS:
            parser.error(f"searchers: {name!r} is not valid; choose from {list(SEARCHERS)}")
    if args.budget <= 0 or args.repeats < 1 or args.workers < 1:
        parser.error("budget must be > 0, repeats and workers >= 1")

    from hmarl.tune import require_extra

    require_extra()
    import ray

    from hmarl.tune.study import Study, best_so_far, plot_best_so_far, run_study
    from hmarl.tune.space import build_space
    from hmarl.tune.trial import TrainerRef

    storage = Path(args.storage or tempfile.mkdtemp(prefix="hmarl_tuning_"))
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for problem in problems:
        spec = PROBLEMS[problem]
        config_cls, _, _ = TrainerRef(spec["algorithm"]).parts()
        space = build_space(config_cls, spec["params"], spec["length"], spec["options"])
        curves: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in searchers}
        for repeat in range(args.repeats):
            # Searchers alternate within a repetition, so a slow spell of the machine hits all alike.
            for searcher in searchers:
                study = Study(
                    algorithm=spec["algorithm"],
                    space=space,
                    searcher=searcher,
                    budget_s=args.budget,
                    seed=repeat,
                    name=f"{problem}_{searcher}_{repeat}_{stamp}",
                    storage=str(storage),
                )
                rows = run_study(study, progress=False)
                points = best_so_far(rows)
                curves[searcher].append(points)
                done = sum(row.status == "done" for row in rows)
                print(
                    f"{problem} {searcher} repeat {repeat}: {done}/{len(rows)} trials, best "
                    f"{points[-1][1] if points else float('nan'):.1f}",
                    flush=True,
                )
                if args.jsonl:
                    with open(args.jsonl, "a") as file:
                        file.write(
                            json.dumps(
                                {
                                    "problem": problem,
                                    "searcher": searcher,
                                    "repeat": repeat,
                                    "budget_s": args.budget,
                                    "trials": len(rows),
                                    "done": done,
                                    "best_so_far": points,
                                }
                            )
                            + "\n"
                        )
        print_table(problem, curves, args.budget)
        if args.plot:
            path = Path(args.plot)
            plot_best_so_far(
                curves,
                str(path.with_name(f"{path.stem}_{problem}{path.suffix}")),
                title=f"{problem}: best score so far ({args.repeats} studies each)",
            )
    ray.shutdown()
    return 0


def print_table(problem: str, curves: dict[str, list[list[tuple[float, float]]]], budget: float) -> None:
    finals = {name: [points[-1][1] if points else -math.inf for points in runs] for name, runs in curves.items()}
    baselines = [name for name in curves if name != "boil"]
    best_baseline = max(baselines, key=lambda name: median(finals[name])) if baselines else ""
    target = median(finals[best_baseline]) if best_baseline else math.nan
    print(f"\n{problem}: budget {budget:g} s per study; target = median final best of {best_baseline} = {target:.1f}")
    print(
        f"{'searcher':>8}  {'median best':>11}  {'mean best':>9}  {'min':>7}  {'max':>7}  "
        f"{'median s to target':>18}  {'reached':>7}"
    )
    for name, runs in curves.items():
        values = finals[name]
        times = [first_time(points, target) for points in runs]
        reached = [t for t in times if math.isfinite(t)]
        median_time = median(times) if len(reached) * 2 > len(times) else math.inf
        print(
            f"{name:>8}  {median(values):11.1f}  {statistics.mean(values):9.1f}  {min(values):7.1f}  "
            f"{max(values):7.1f}  {median_time:18.1f}  {len(reached):>3}/{len(times)}"
        )
    if "boil" in curves and best_baseline:
        boil_time = median([first_time(points, target) for points in curves["boil"]])
        base_time = median([first_time(points, target) for points in curves[best_baseline]])
        ratio = boil_time / base_time if math.isfinite(boil_time) and base_time > 0 else math.inf
        print(f"BOIL time to target / {best_baseline}'s: {ratio:.2f} (target of the method: <= 0.5)")


if __name__ == "__main__":
    sys.exit(main())
