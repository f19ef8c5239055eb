"""Wall clock to solve ``room`` on this machine: configurations of the same learner side by
side, seeds interleaved so that every configuration sees the same machine load.

    python benchmarks/room_speed.py                                    # Ind-hDQN, seeds 0-2, the configurations below
    python benchmarks/room_speed.py --configs default threads2 --trainer hqmix --seeds 1
    python benchmarks/room_speed.py --device cuda --configs default graphs wide1024 wide1024_graphs

"Solved" is the reproduction's threshold: a greedy evaluation (``--eval-every`` steps,
100 episodes) with reward sum >= 0.95 and mean episode length <= 40 steps; every run
stops there. Each run is a fresh process (a compiled run pays its compilation in its wall
clock); ``wall s`` is the run's own wall clock to the evaluation that reached the target.

Configurations (``--configs``):

=================  ==================================================================
``default``        the trainer's defaults (one torch thread: ``--torch-threads 1``)
``threads2``       the defaults with ``--torch-threads 2`` (both cores for the updates)
``compiled``       ``--compile default`` on one thread
``compiled2``      ``--compile default --torch-threads 2``
``graphs``         ``--compile default --cuda-graphs`` (CUDA only)
``wide1024``       1,024 copies and batch 16,384 (32x the default's copies and batch,
                   so the updates per environment step stay; the sqrt rule scales the
                   learning rates)
``wide1024_graphs`` ``wide1024`` with ``--compile default --cuda-graphs`` (CUDA only)
=================  ==================================================================
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

CONFIGS: dict[str, tuple[str, ...]] = {
    "default": (),
    "threads2": ("--torch-threads", "2"),
    "compiled": ("--compile", "default"),
    "compiled2": ("--compile", "default", "--torch-threads", "2"),
    "graphs": ("--compile", "default", "--cuda-graphs"),
    "wide1024": ("--num-envs", "1024", "--batch-size", "16384"),
    "wide1024_graphs": ("--num-envs", "1024", "--batch-size", "16384", "--compile", "default", "--cuda-graphs"),
}
THRESHOLD, MAX_LENGTH, TOTAL_STEPS, EVAL_EVERY = 0.95, 40, 150_000, 12_500


@dataclass
class Run:
    trainer: str
    config: str
    seed: int
    env_steps: int
    updates: int
    wall_seconds: float
    steps_to_target: int | None
    seconds_to_target: float | None


def run_one(trainer: str, config: str, seed: int, root: str, device: str = "cpu") -> Run:
    import importlib

    extra = CONFIGS[config]
    module = importlib.import_module(f"hmarl.trainers.{trainer}")
    result = module.main(
        [
            *extra,
            "--seed",
            str(seed),
            "--total-steps",
            str(TOTAL_STEPS),
            "--eval-every",
            str(EVAL_EVERY),
            "--eval-episodes",
            "100",
            "--target-value",
            str(THRESHOLD),
            "--target-max-length",
            str(MAX_LENGTH),
            "--stop-at-target",
            "--device",
            device,
            "--no-progress",
            "--run-name",
            f"room_speed_{trainer}_{config}_seed{seed}",
            "--log-dir",
            f"{root}/runs",
            "--checkpoint-dir",
            f"{root}/checkpoints",
        ]
    )
    return Run(
        trainer,
        config,
        seed,
        result.env_steps,
        result.updates,
        result.wall_seconds,
        result.steps_to_target,
        result.seconds_to_target,
    )


def print_table(runs: list[Run], baseline: str) -> None:
    seconds = {
        config: {
            run.seed: run.seconds_to_target if run.seconds_to_target is not None else math.inf
            for run in runs
            if run.config == config
        }
        for config in dict.fromkeys(run.config for run in runs)
    }
    print(
        "| trainer | configuration | seeds solved | env steps to target | updates | wall s to target (per seed) "
        f"| median wall s | speed-up vs {baseline} (median of per-seed ratios) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for config, per_seed in seconds.items():
        members = [run for run in runs if run.config == config]
        solved = [run for run in members if run.steps_to_target is not None]
        ratios = [
            seconds[baseline][seed] / value
            for seed, value in per_seed.items()
            if seed in seconds.get(baseline, {}) and math.isfinite(value)
        ]
        steps = statistics.mean(run.steps_to_target for run in solved) if solved else math.nan
        print(
            f"| {members[0].trainer} | {config} | {len(solved)}/{len(members)} | {steps:,.0f} | "
            f"{statistics.mean(run.updates for run in members):,.0f} | "
            f"{' / '.join(f'{value:.1f}' for value in per_seed.values())} | "
            f"{statistics.median(per_seed.values()):.1f} | "
            f"{statistics.median(ratios) if ratios else math.nan:.2f}x |"
        )


def main(argv: Sequence[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainer", default="ind_hdqn", choices=["ind_hdqn", "hcom", "hqmix"], help="the learner")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(CONFIGS),
        choices=list(CONFIGS),
        help="configurations to compare; the first is the baseline of the speed-up column",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. SEEDS-1 of every configuration")
    parser.add_argument("--device", default="cpu", help="the training device (cpu, cuda)")
    parser.add_argument("--out", default="runs/room_speed.jsonl", help="append each finished run here")
    parser.add_argument("--root", default="runs/room_speed", help="logs and checkpoints go under here")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    graphs = [config for config in args.configs if "graphs" in config]
    if graphs and not args.device.startswith("cuda"):
        raise ValueError(f"--configs {' '.join(graphs)} need --device cuda, got --device {args.device}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    context = multiprocessing.get_context("spawn")
    for seed in range(args.seeds):
        for config in args.configs:
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                run = pool.submit(run_one, args.trainer, config, seed, args.root, args.device).result()
            runs.append(run)
            with out.open("a") as stream:
                stream.write(json.dumps(asdict(run)) + "\n")
            print(f"finished {config} seed {seed}: {run.steps_to_target} steps, {run.seconds_to_target} s", flush=True)
    print_table(runs, args.configs[0])
    return runs


if __name__ == "__main__":
    main()
