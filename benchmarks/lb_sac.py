"""SAC-N against LB-SAC on one offline dataset, in one run: normalised score against
gradient updates and training wall clock, and the wall-clock ratio to reach a score.

LB-SAC (Nikulin et al., 2022) scales the batch (10,000, lr 3e-4 * sqrt(B / 256)) and
shrinks the ensemble; the paper reports 3-4x shorter training than SAC-N (batch 256,
lr 3e-4, a large ensemble), on a GPU. Ensemble sizes default to the reference configs
for the dataset's environment and quality.

The dataset is collected locally with ``trainers/collect.py`` (an online SAC run, then
the policy one third of the way from random to the run's best, D4RL's "medium") the
first time it is needed, and cached under ``--data-dir`` in a folder named by the
collection's settings, so a later run with the same settings reuses it; nothing is
downloaded. ``--collect-only`` stops after that step.

    # the full comparison (a GPU; hours on a CPU)
    python benchmarks/lb_sac.py --env HalfCheetah-v5
    # scaled down to one CPU core: ~20 min to collect once, then ~20 min per comparison
    OMP_NUM_THREADS=1 python benchmarks/lb_sac.py --scaled-down --collect-only
    OMP_NUM_THREADS=1 python benchmarks/lb_sac.py --scaled-down

What ``--scaled-down`` scales down, against the full defaults (HalfCheetah-medium in
both; SAC-N's batch 256 and lr 3e-4, LB-SAC's batch 10,000 and sqrt lr rule, the
reference ensembles N = 10 for SAC-N and N = 4 for LB-SAC, and every other SAC
hyperparameter are kept):

- the data: the online SAC behind it has 2x128 instead of 2x256 hidden units and runs
  80,000 instead of 1,000,000 environment steps (its best policy is the expert the
  scores are normalised to, so 100 means that policy, not D4RL's expert); the dataset
  holds 100,000 instead of 1,000,000 transitions;
- the offline networks: 2x64 instead of 3x256 hidden units (actor and every critic);
- the budget: 540 instead of 3,600 training seconds per algorithm, an evaluation of
  5 (not 10) episodes every 30 (not 120) training seconds.

Wall clock counts the updates only (evaluation excluded); both algorithms evaluate
the same number of episodes at the same training-time marks, so the curves compare.
The time-to-score ratio uses, by default, a score both runs reach: ``--target-fraction``
of the lower of their two final scores, provided it clears the score of the nearly
untrained policies (after a few updates); otherwise the table says there is none.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hmarl.core import scale_lr
from hmarl.data import OfflineDataset, load_dataset
from hmarl.trainers import collect, sac_n
from hmarl.training import HelpFormatter, OfflineResult

# (environment, quality) -> (SAC-N ensemble, LB-SAC ensemble), from the official configs.
REFERENCE_ENSEMBLES: dict[tuple[str, str], tuple[int, int]] = {
    ("halfcheetah", "random"): (10, 2),
    ("halfcheetah", "medium"): (10, 4),
    ("halfcheetah", "replay"): (10, 10),
    ("halfcheetah", "expert"): (10, 6),
    ("hopper", "random"): (500, 25),
    ("hopper", "medium"): (500, 25),
    ("hopper", "replay"): (200, 20),
    ("hopper", "expert"): (500, 50),
    ("walker2d", "random"): (20, 15),
    ("walker2d", "medium"): (20, 10),
    ("walker2d", "replay"): (20, 10),
    ("walker2d", "expert"): (100, 30),
}
SAC_N_BATCH = 256
LB_SAC_BATCH = 10_000
BASE_LR = 3e-4
# Uniform actions before the online SAC behind a dataset acts and learns (as in CleanRL's SAC).
COLLECT_RANDOM_STEPS = 5_000
# Updates of the short run that times each algorithm and scores its nearly untrained policy.
TIMING_UPDATES = 20
SCALED_DOWN: dict[str, Any] = {
    "env": "HalfCheetah-v5",
    "collect_steps": 80_000,
    "collect_transitions": 100_000,
    "collect_hidden_sizes": [128, 128],
    "hidden_sizes": [64, 64],
    "time_budget": 540.0,
    "eval_seconds": 30.0,
    "eval_episodes": 5,
}


@dataclass
class Timing:
    """The short run before the real one: its speed sets the evaluation interval, its score
    is the nearly untrained policy's, the floor a meaningful target has to clear."""

    updates_per_second: float
    score: float


@dataclass
class Run:
    name: str
    ensemble_size: int
    batch_size: int
    lr: float
    result: OfflineResult
    timing: Timing

    def curve(self) -> list[tuple[int, float, float]]:
        """(updates, training seconds, normalised score) at every evaluation."""
        return [(u, m["train_seconds"], m["normalized_score"]) for u, m in self.result.evaluations]

    def first_reaching(self, score: float) -> tuple[int, float] | None:
        """(updates, training seconds) of the first evaluation at or above ``score``."""
        return next(((updates, seconds) for updates, seconds, s in self.curve() if s >= score), None)

    @property
    def final_score(self) -> float:
        return self.curve()[-1][2]

    @property
    def best_score(self) -> float:
        return max(score for _, _, score in self.curve())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    data = parser.add_argument_group("dataset")
    data.add_argument(
        "--env",
        default="HalfCheetah-v5",
        help="gymnasium id (HalfCheetah-v5, Hopper-v5 or Walker2d-v5 have reference ensembles)",
    )
    data.add_argument(
        "--quality", default="medium", choices=sorted({q for _, q in REFERENCE_ENSEMBLES}), help="dataset quality"
    )
    data.add_argument(
        "--dataset", default="", help="an existing dataset file to use instead of the collected one (no collection)"
    )
    data.add_argument(
        "--data-dir",
        default="~/.cache/hmarl/datasets",
        help="cache of collected datasets: <data-dir>/<collection settings>/<env>-<quality>.hdf5",
    )
    data.add_argument(
        "--collect-steps",
        type=int,
        default=1_000_000,
        help="environment steps of the online SAC run behind a collected dataset",
    )
    data.add_argument(
        "--collect-transitions",
        type=int,
        default=1_000_000,
        help="transitions in a collected dataset (whole episodes, at least)",
    )
    data.add_argument(
        "--collect-hidden-sizes",
        type=int,
        nargs="+",
        default=[256, 256],
        help="hidden layer widths of the online SAC behind a collected dataset",
    )
    data.add_argument("--collect-seed", type=int, default=0, help="seed of the collection")
    data.add_argument("--collect-only", action="store_true", help="collect the dataset if missing, then stop")
    runs = parser.add_argument_group("SAC-N and LB-SAC")
    runs.add_argument("--sac-n-ensemble", type=int, default=0, help="SAC-N's N (0: the reference's)")
    runs.add_argument("--lb-sac-ensemble", type=int, default=0, help="LB-SAC's N (0: the reference's)")
    runs.add_argument(
        "--lb-sac-batch",
        type=int,
        default=LB_SAC_BATCH,
        help=f"LB-SAC's batch size; its lr is {BASE_LR} * sqrt(batch / {SAC_N_BATCH})",
    )
    runs.add_argument(
        "--hidden-sizes",
        type=int,
        nargs="+",
        default=[256, 256, 256],
        help="hidden layer widths of the actor and of every critic",
    )
    runs.add_argument(
        "--updates",
        type=int,
        default=3_000_000,
        help="most gradient updates per algorithm (the time budget usually stops it first)",
    )
    runs.add_argument(
        "--time-budget", type=float, default=3_600.0, help="training seconds per algorithm (updates only, evaluation excluded)"
    )
    runs.add_argument("--eval-seconds", type=float, default=120.0, help="training seconds between evaluations")
    runs.add_argument("--eval-episodes", type=int, default=10, help="greedy episodes per evaluation")
    runs.add_argument(
        "--target-fraction",
        type=float,
        default=0.8,
        help="the time-to-score target is this fraction of the lower of the two final scores",
    )
    runs.add_argument(
        "--target-score", type=float, default=math.nan, help="a normalised score to time instead (nan: use --target-fraction)"
    )
    runs.add_argument("--seed", type=int, default=0, help="seed of both offline runs")
    runs.add_argument("--device", default="auto", help="torch device (auto: CUDA when present)")
    runs.add_argument("--torch-threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    runs.add_argument(
        "--out-dir", default="runs/lb_sac_benchmark", help="TensorBoard logs and checkpoints of the runs and of the collection"
    )
    parser.add_argument(
        "--scaled-down",
        action="store_true",
        help="defaults for one CPU core (options given explicitly still win): "
        + ", ".join(f"{name}={value}" for name, value in SCALED_DOWN.items()),
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.scaled_down:
        parser.set_defaults(**SCALED_DOWN)
        args = parser.parse_args(argv)
    _validate(args)
    return args


def _validate(args: argparse.Namespace) -> None:
    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    for name in ("collect_steps", "collect_transitions", "lb_sac_batch", "updates", "eval_episodes"):
        if getattr(args, name) < 1:
            raise ValueError(f"{flag(name)} must be >= 1, got {getattr(args, name)}")
    for name in ("sac_n_ensemble", "lb_sac_ensemble", "torch_threads"):
        if getattr(args, name) < 0:
            raise ValueError(f"{flag(name)} must be >= 0, got {getattr(args, name)}")
    for name in ("time_budget", "eval_seconds"):
        if not getattr(args, name) > 0:
            raise ValueError(f"{flag(name)} must be > 0, got {getattr(args, name)}")
    if not 0 < args.target_fraction <= 1:
        raise ValueError(f"--target-fraction must be in (0, 1], got {args.target_fraction}")
    for name in ("hidden_sizes", "collect_hidden_sizes"):
        if min(getattr(args, name)) < 1:
            raise ValueError(f"{flag(name)} must all be >= 1, got {getattr(args, name)}")


def reference_ensembles(env: str, quality: str) -> tuple[int, int]:
    family = re.sub(r"-v\d+$", "", env).lower()
    if (family, quality) not in REFERENCE_ENSEMBLES:
        known = sorted({name for name, _ in REFERENCE_ENSEMBLES})
        raise ValueError(
            f"env={env!r} has no reference ensemble sizes; pass --sac-n-ensemble and --lb-sac-ensemble, or use one of {known}"
        )
    return REFERENCE_ENSEMBLES[family, quality]


def collection_dir(args: argparse.Namespace) -> Path:
    """The cache folder of one collection: every setting that changes the data is in its name."""
    hidden = "x".join(map(str, args.collect_hidden_sizes))
    name = f"{args.env}-sac{hidden}-{args.collect_steps}steps-{args.collect_transitions}transitions-seed{args.collect_seed}"
    return Path(args.data_dir).expanduser() / name


def dataset_path(args: argparse.Namespace) -> Path:
    """The dataset to learn from, collected first when it is not cached."""
    if args.dataset:
        return Path(args.dataset)
    directory = collection_dir(args)
    path = directory / f"{args.env}-{args.quality}.hdf5"
    if path.exists():
        print(f"dataset: {path} (cached)", flush=True)
        return path
    started = time.perf_counter()
    collect.main(
        [
            "--env",
            args.env,
            "--qualities",
            args.quality,
            "--out-dir",
            str(directory),
            "--no-progress",
            "--total-steps",
            str(args.collect_steps),
            "--num-transitions",
            str(args.collect_transitions),
            "--hidden-sizes",
            *map(str, args.collect_hidden_sizes),
            "--buffer-size",
            str(args.collect_steps),
            "--learning-starts",
            str(COLLECT_RANDOM_STEPS),
            "--random-steps",
            str(COLLECT_RANDOM_STEPS),
            "--eval-every",
            "0",
            "--seed",
            str(args.collect_seed),
            "--device",
            args.device,
            "--run-name",
            f"collect_{directory.name}",
            "--log-dir",
            args.out_dir,
            "--checkpoint-dir",
            args.out_dir,
            "--reference-episodes",
            "20",
            "--snapshots",
            "20",
        ]
    )
    print(f"dataset: {path} (collected in {time.perf_counter() - started:.0f} s)", flush=True)
    return path


def describe(dataset: OfflineDataset) -> str:
    meta = dataset.metadata
    returns = dataset.episode_returns()
    mean_return = float(returns.mean())
    text = (
        f"{meta.get('env_id', '?')} {meta.get('quality', '?')}: {len(dataset)} transitions, "
        f"{returns.size} episodes, mean return {mean_return:.0f} "
        f"(normalised {dataset.normalized_score(mean_return):.1f}); "
        f"normalised 0 = uniform random actions ({float(meta['ref_min_score']):.0f}), "
        f"100 = the collecting run's best greedy policy ({float(meta['ref_max_score']):.0f})"
    )
    if "policy_return" in meta and meta.get("quality") != "random":
        text += (
            f"; behaviour policy: greedy return {float(meta['policy_return']):.0f} "
            f"after {meta.get('policy_env_steps', '?')} env steps"
        )
    return text


def offline_args(args: argparse.Namespace, path: Path, name: str, ensemble: int, batch: int) -> list[str]:
    return [
        "offline",
        "--dataset",
        str(path),
        "--ensemble-size",
        str(ensemble),
        "--batch-size",
        str(batch),
        "--lr",
        str(BASE_LR),
        "--base-batch-size",
        str(SAC_N_BATCH),
        "--lr-scaling",
        "sqrt",
        "--hidden-sizes",
        *map(str, args.hidden_sizes),
        "--eval-episodes",
        str(args.eval_episodes),
        "--seed",
        str(args.seed),
        "--device",
        args.device,
        "--run-name",
        name,
        "--log-dir",
        args.out_dir,
        "--checkpoint-dir",
        args.out_dir,
        "--checkpoint-every",
        "0",
        "--no-progress",
    ]


def timing_run(args: argparse.Namespace, path: Path, ensemble: int, batch: int) -> Timing:
    result = sac_n.main(
        [
            *offline_args(args, path, f"timing_{ensemble}_{batch}", ensemble, batch),
            "--total-updates",
            str(TIMING_UPDATES),
            "--eval-every",
            "0",
        ]
    )
    return Timing(result.updates / max(result.train_seconds, 1e-9), result.final_eval["normalized_score"])


def train(args: argparse.Namespace, path: Path, name: str, ensemble: int, batch: int) -> Run:
    timing = timing_run(args, path, ensemble, batch)
    eval_every = max(int(timing.updates_per_second * args.eval_seconds), 1)
    result = sac_n.main(
        [
            *offline_args(args, path, name, ensemble, batch),
            "--total-updates",
            str(args.updates),
            "--max-train-seconds",
            str(args.time_budget),
            "--eval-every",
            str(eval_every),
        ]
    )
    return Run(name, ensemble, batch, scale_lr(BASE_LR, batch, SAC_N_BATCH, "sqrt"), result, timing)


def time_to_score(runs: list[Run], target: float, how: str) -> list[str]:
    lines = [
        f"time to normalised score {target:.1f} ({how}), first evaluation at or above it:",
        "",
        "| algorithm | train s | updates |",
        "|---|---|---|",
    ]
    reached = [run.first_reaching(target) for run in runs]
    for run, point in zip(runs, reached, strict=True):
        lines.append(
            f"| {run.name} | {point[1]:.0f} | {point[0]} |" if point else f"| {run.name} | not reached | not reached |"
        )
    lines.append("")
    sac, lb = reached
    if sac and lb:
        speedup = sac[1] / lb[1]
        lines.append(
            f"wall-clock ratio SAC-N / LB-SAC = {speedup:.2f} (LB-SAC {'faster' if speedup > 1 else 'slower'}; "
            f"published: 3-4x on a GPU); gradient-update ratio SAC-N / LB-SAC = {sac[0] / lb[0]:.1f}"
        )
    else:
        missing = " and ".join(run.name for run, point in zip(runs, reached, strict=True) if point is None)
        lines.append(f"no ratio: {missing} never reached {target:.1f}")
    return lines


def report(runs: list[Run], args: argparse.Namespace, dataset: OfflineDataset, device: str) -> str:
    hidden = "x".join(map(str, args.hidden_sizes))
    lines = [
        f"dataset: {describe(dataset)}",
        f"device: {device}, {torch.get_num_threads()} torch thread(s); hidden {hidden}; "
        f"train s counts the updates only; scores are greedy means over {args.eval_episodes} episodes",
        "",
        "| algorithm | N | batch | lr | updates | train s | updates/s | samples/s | N x samples/s "
        f"| score after {TIMING_UPDATES} updates | final score | best score |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        r = run.result
        rate = r.updates / max(r.train_seconds, 1e-9)
        lines.append(
            f"| {run.name} | {run.ensemble_size} | {run.batch_size} | {run.lr:.2e} | {r.updates} | "
            f"{r.train_seconds:.0f} | {rate:.1f} | {rate * run.batch_size:,.0f} | "
            f"{rate * run.batch_size * run.ensemble_size:,.0f} | {run.timing.score:.1f} | "
            f"{run.final_score:.1f} | {run.best_score:.1f} |"
        )
    lines += ["", "normalised score at updates / training seconds:", ""]
    for run in runs:
        points = ", ".join(f"{u}/{s:.0f}s: {score:.1f}" for u, s, score in run.curve())
        lines.append(f"- {run.name}: {points}")
    lines.append("")
    if not math.isnan(args.target_score):
        lines += time_to_score(runs, args.target_score, "--target-score")
    else:
        lower = min(run.final_score for run in runs)
        target = args.target_fraction * lower
        floor = max(run.timing.score for run in runs)
        if target > floor:
            lines += time_to_score(runs, target, f"{args.target_fraction:g} x the lower final score {lower:.1f}")
        else:
            lines.append(
                f"no ratio: {args.target_fraction:g} x the lower final score {lower:.1f} = {target:.1f} does not "
                f"clear {floor:.1f}, the better score after {TIMING_UPDATES} updates; the runs learned no "
                "common score"
            )
    behaviour = float(dataset.normalized_score(float(dataset.episode_returns().mean())))
    lines += ["", *time_to_score(runs, behaviour, "the dataset's own, its behaviour policy's level")]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    reference = (0, 0)
    if not (args.sac_n_ensemble and args.lb_sac_ensemble):
        reference = reference_ensembles(args.env, args.quality)
    sac_n_ensemble = args.sac_n_ensemble or reference[0]
    lb_sac_ensemble = args.lb_sac_ensemble or reference[1]
    path = dataset_path(args)
    dataset = load_dataset(path)
    print(f"dataset: {describe(dataset)}", flush=True)
    if args.collect_only:
        return str(path)
    configs = [("sac_n", sac_n_ensemble, SAC_N_BATCH), ("lb_sac", lb_sac_ensemble, args.lb_sac_batch)]
    runs = [train(args, path, name, ensemble, batch) for name, ensemble, batch in configs]
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    table = report(runs, args, dataset, device)
    print(table, flush=True)
    return table


if __name__ == "__main__":
    main()
