"""SAC-N against LB-SAC on one offline dataset, in one run: normalised score against
gradient updates and training wall clock, and the wall-clock ratio to reach a score.

LB-SAC (Nikulin et al., 2022) scales the batch (10,000, lr 3e-4 * sqrt(B / 256)) and
shrinks the ensemble; the paper reports 3-4x shorter training than SAC-N (batch 256,
lr 3e-4, a large ensemble). Ensemble sizes default to the reference configs for the
dataset's environment and quality. The dataset is collected locally with
``trainers/collect.py`` when it is not on disk; nothing is downloaded.

    # the full comparison (a GPU; MuJoCo via the mujoco extra)
    python benchmarks/lb_sac.py --env HalfCheetah-v5 --collect-steps 300000 --updates 200000 \\
        --time-budget 3600 --hidden-sizes 256 256 256
    # scaled down to about ten minutes on a laptop CPU
    python benchmarks/lb_sac.py --scaled-down

Wall clock counts the updates only (evaluation excluded); both algorithms evaluate
the same number of episodes at the same training-time marks, so the curves compare.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from hmarl.data import load_dataset
from hmarl.trainers import collect, sac_n
from hmarl.training import OfflineResult

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
SCALED_DOWN = {
    "env": "HalfCheetah-v5",
    "collect_steps": 6_000,
    "collect_transitions": 20_000,
    "updates": 100_000,
    "time_budget": 150.0,
    "eval_seconds": 15.0,
    "hidden_sizes": [64, 64],
    "eval_episodes": 5,
}


@dataclass
class Run:
    name: str
    ensemble_size: int
    batch_size: int
    lr: float
    result: OfflineResult

    def curve(self) -> list[tuple[int, float, float]]:
        """(updates, training seconds, normalised score) at every evaluation."""
        return [(u, m["train_seconds"], m["normalized_score"]) for u, m in self.result.evaluations]

    def seconds_to(self, score: float) -> float:
        return next((seconds for _, seconds, s in self.curve() if s >= score), math.nan)

    def updates_to(self, score: float) -> float:
        return next((float(updates) for updates, _, s in self.curve() if s >= score), math.nan)

    @property
    def best_score(self) -> float:
        return max(score for _, _, score in self.curve())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5", help="gymnasium id (Hopper-v5 or HalfCheetah-v5)")
    parser.add_argument("--quality", default="medium", choices=sorted({q for _, q in REFERENCE_ENSEMBLES}),
                        help="dataset quality")
    parser.add_argument("--dataset", default="", help="dataset file (default: <data-dir>/<env>-<quality>.hdf5)")
    parser.add_argument("--data-dir", default="datasets", help="where collected datasets are written")
    parser.add_argument("--collect-steps", type=int, default=300_000,
                        help="online SAC steps behind the dataset when it has to be collected")
    parser.add_argument("--collect-transitions", type=int, default=200_000, help="transitions in a collected dataset")
    parser.add_argument("--sac-n-ensemble", type=int, default=0, help="SAC-N's N (0: the reference's)")
    parser.add_argument("--lb-sac-ensemble", type=int, default=0, help="LB-SAC's N (0: the reference's)")
    parser.add_argument("--lb-sac-batch", type=int, default=LB_SAC_BATCH, help="LB-SAC's batch size")
    parser.add_argument("--updates", type=int, default=300_000, help="most gradient updates per algorithm")
    parser.add_argument("--time-budget", type=float, default=3_600.0, help="training seconds per algorithm")
    parser.add_argument("--eval-seconds", type=float, default=60.0, help="training seconds between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[256, 256, 256], help="hidden layer widths")
    parser.add_argument("--target-score", type=float, default=math.nan,
                        help="score for the time-to-score ratio (default: the dataset's own, its behaviour level)")
    parser.add_argument("--device", default="auto", help="torch device (auto: CUDA when present)")
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs and of the collection")
    parser.add_argument("--out-dir", default="runs/lb_sac_benchmark", help="logs and checkpoints of the runs")
    parser.add_argument("--scaled-down", action="store_true",
                        help=f"about ten minutes on a CPU: {', '.join(f'{k}={v}' for k, v in SCALED_DOWN.items())}")
    args = parser.parse_args(argv)
    if args.scaled_down:
        for name, value in SCALED_DOWN.items():
            setattr(args, name, value)
    return args


def reference_ensembles(env: str, quality: str) -> tuple[int, int]:
    family = re.sub(r"-v\d+$", "", env).lower()
    if (family, quality) not in REFERENCE_ENSEMBLES:
        known = sorted({name for name, _ in REFERENCE_ENSEMBLES})
        raise ValueError(f"env={env!r} has no reference ensemble sizes; pass --sac-n-ensemble and "
                         f"--lb-sac-ensemble, or use one of {known}")
    return REFERENCE_ENSEMBLES[family, quality]


def dataset_path(args: argparse.Namespace) -> Path:
    if args.dataset:
        return Path(args.dataset)
    path = Path(args.data_dir) / f"{args.env}-{args.quality}.hdf5"
    if not path.exists():
        collect.main([
            "--env", args.env, "--qualities", args.quality, "--out-dir", args.data_dir, "--no-progress",
            "--total-steps", str(args.collect_steps), "--num-transitions", str(args.collect_transitions),
            "--hidden-sizes", *map(str, args.hidden_sizes), "--eval-every", "0", "--seed", str(args.seed),
            "--learning-starts", "1000", "--random-steps", "1000", "--device", args.device,
            "--run-name", f"collect_{args.env}", "--log-dir", args.out_dir, "--checkpoint-dir", args.out_dir,
            "--reference-episodes", "20", "--snapshots", "10",
        ])
    return path


def train(args: argparse.Namespace, path: Path, name: str, ensemble: int, batch: int, eval_every: int) -> Run:
    lr_scaling = "sqrt" if batch != SAC_N_BATCH else "none"
    result = sac_n.main([
        "offline", "--dataset", str(path), "--ensemble-size", str(ensemble), "--batch-size", str(batch),
        "--lr", "3e-4", "--base-batch-size", str(SAC_N_BATCH), "--lr-scaling", lr_scaling,
        "--hidden-sizes", *map(str, args.hidden_sizes), "--total-updates", str(args.updates),
        "--max-train-seconds", str(args.time_budget), "--eval-every", str(eval_every),
        "--eval-episodes", str(args.eval_episodes), "--seed", str(args.seed), "--device", args.device,
        "--run-name", name, "--log-dir", args.out_dir, "--checkpoint-dir", args.out_dir,
        "--checkpoint-every", "0", "--no-progress",
    ])
    lr = 3e-4 * (math.sqrt(batch / SAC_N_BATCH) if lr_scaling == "sqrt" else 1.0)
    return Run(name, ensemble, batch, lr, result)


def updates_per_second(args: argparse.Namespace, path: Path, ensemble: int, batch: int) -> float:
    """A short timing run, so that both algorithms evaluate every ``--eval-seconds``."""
    result = sac_n.main([
        "offline", "--dataset", str(path), "--ensemble-size", str(ensemble), "--batch-size", str(batch),
        "--hidden-sizes", *map(str, args.hidden_sizes), "--total-updates", "20", "--eval-every", "0",
        "--eval-episodes", "1", "--device", args.device, "--run-name", f"timing_{ensemble}_{batch}",
        "--log-dir", args.out_dir, "--checkpoint-dir", args.out_dir, "--no-progress",
    ])
    return result.updates / max(result.train_seconds, 1e-9)


def report(runs: list[Run], target: float, dataset_score: float, device: str) -> str:
    lines = [
        f"device: {device}; dataset mean return as normalised score: {dataset_score:.1f}",
        "",
        "| algorithm | N | batch | lr | updates | train s | updates/s | final score | best score |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        r = run.result
        lines.append(
            f"| {run.name} | {run.ensemble_size} | {run.batch_size} | {run.lr:.2e} | {r.updates} | "
            f"{r.train_seconds:.0f} | {r.updates / max(r.train_seconds, 1e-9):.1f} | "
            f"{r.final_eval['normalized_score']:.1f} | {run.best_score:.1f} |"
        )
    lines += ["", "normalised score against updates and training seconds:", ""]
    for run in runs:
        points = ", ".join(f"{u}u/{s:.0f}s: {score:.1f}" for u, s, score in run.curve())
        lines.append(f"- {run.name}: {points}")
    sac, lb = runs

    def reached(run: Run) -> str:
        seconds = run.seconds_to(target)
        return "not reached" if math.isnan(seconds) else f"{seconds:.0f} s ({run.updates_to(target):.0f} updates)"

    ratio = sac.seconds_to(target) / lb.seconds_to(target)
    lines += [
        "",
        f"time to normalised score {target:.1f}: SAC-N {reached(sac)}, LB-SAC {reached(lb)}; "
        f"wall-clock ratio SAC-N / LB-SAC = {ratio:.2f} (published: 3-4x)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(argv)
    if args.sac_n_ensemble and args.lb_sac_ensemble:
        sac_n_ensemble, lb_sac_ensemble = args.sac_n_ensemble, args.lb_sac_ensemble
    else:
        sac_n_ensemble, lb_sac_ensemble = reference_ensembles(args.env, args.quality)
        sac_n_ensemble = args.sac_n_ensemble or sac_n_ensemble
        lb_sac_ensemble = args.lb_sac_ensemble or lb_sac_ensemble
    path = dataset_path(args)
    dataset = load_dataset(path)
    configs = [("sac_n", sac_n_ensemble, SAC_N_BATCH), ("lb_sac", lb_sac_ensemble, args.lb_sac_batch)]
    runs = []
    for name, ensemble, batch in configs:
        rate = updates_per_second(args, path, ensemble, batch)
        eval_every = max(int(rate * args.eval_seconds), 1)
        runs.append(train(args, path, name, ensemble, batch, eval_every))
    dataset_score = dataset.normalized_score(dataset.metadata["mean_return"])
    target = dataset_score if math.isnan(args.target_score) else args.target_score
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    table = report(runs, target, dataset_score, device)
    print(table, flush=True)
    return table


if __name__ == "__main__":
    main()
