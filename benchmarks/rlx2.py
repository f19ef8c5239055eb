"""RLx2 sparse training against dense, per task and sparsity, over seeds; ablations; and
CPU inference of a sparse network against dense.

    python benchmarks/rlx2.py                                   # Pendulum and CartPole, every method, seeds 0-2
    python benchmarks/rlx2.py --tasks room_ind_hdqn room_hqmix  # the hierarchical learners on room
    python benchmarks/rlx2.py --ablations                       # RLx2 at 90% on one task, each component removed
    python benchmarks/rlx2.py --inference                       # CSR against dense inference on one CPU thread
    python benchmarks/rlx2.py --long                            # adds SAC on HalfCheetah-v5 (the mujoco extra)
    python benchmarks/rlx2.py --table-only --out runs/rlx2.jsonl

Methods: ``dense``; ``static`` (an Erdős-Rényi mask fixed from the start, 1-step targets,
a fixed buffer); ``rigl`` (RigL topology updates alone); ``rlx2`` (RigL, delayed 3-step
targets, the dynamic buffer), each sparse one at 90% and 95% (actor and critic alike).
Runs already in ``--out`` are not run again. Each run is sized for one CPU core
(``--workers`` runs that many at once, one thread each) and appended to ``--out`` as a
JSON line; the tables are printed from them: the final greedy score (mean of the last two
evaluations) relative to dense, environment steps to the task's threshold, and training
and inference FLOPs relative to dense (from the masks, the paper's measure).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Task:
    trainer: str
    args: tuple[str, ...]
    threshold: float
    total_steps: int
    eval_every: int
    long: bool = False
    #: The score of acting at random, the zero of "relative to dense".
    floor: float = 0.0


SAC_SMALL = (
    "online",
    "--hidden-sizes",
    "128",
    "128",
    "--batch-size",
    "128",
    "--lr",
    "1e-3",
    "--learning-starts",
    "500",
    "--random-steps",
    "500",
    "--eval-episodes",
    "5",
)
TASKS = {
    "pendulum_sac": Task("sac_n", (*SAC_SMALL, "--env", "Pendulum-v1"), -400.0, 6_000, 1_000, floor=-1400.0),
    "cartpole_dqn": Task("dqn", ("--env", "CartPole-v1", "--eval-episodes", "10"), 475.0, 25_000, 2_500),
    "room_ind_hdqn": Task("ind_hdqn", ("--eval-episodes", "10"), 0.95, 100_000, 12_500),
    "room_hqmix": Task("hqmix", ("--eval-episodes", "10"), 0.95, 100_000, 12_500),
    "halfcheetah_sac": Task(
        "sac_n",
        ("online", "--env", "HalfCheetah-v5", "--learning-starts", "5000", "--random-steps", "5000"),
        3000.0,
        300_000,
        10_000,
        long=True,
    ),
}
DEFAULT_TASKS = ("pendulum_sac", "cartpole_dqn")
METHODS = {
    "dense": (),
    "static": ("--topology", "static", "--delayed-nstep", "1", "--no-dynamic-buffer"),
    "rigl": ("--delayed-nstep", "1", "--no-dynamic-buffer"),
    "rlx2": (),
}
SPARSITIES = (0.9, 0.95)
ABLATIONS = {
    "rlx2": (),
    "no_topology": ("--topology", "static"),
    "no_nstep": ("--delayed-nstep", "1"),
    "no_dynamic_buffer": ("--no-dynamic-buffer",),
}
ABLATION_TASK = "pendulum_sac"


@dataclass
class Run:
    task: str
    method: str
    sparsity: float
    seed: int
    env_steps: int
    wall_seconds: float
    steps_to_target: int | None
    final_return: float
    best_return: float
    extra: dict[str, str] = field(default_factory=dict)
    group: str = "main"


def options_of(method: str, sparsity: float, group: str) -> list[str]:
    if method == "dense":
        return []
    extra = ABLATIONS[method] if group == "ablation" else METHODS[method]
    return ["--sparsity", str(sparsity), *extra]


def run_one(task_name: str, method: str, sparsity: float, seed: int, root: str, group: str = "main") -> Run:
    import importlib

    import torch

    torch.set_num_threads(1)
    task = TASKS[task_name]
    trainer = importlib.import_module(f"hmarl.trainers.{task.trainer}")
    name = f"rlx2_{group}_{task_name}_{method}_{sparsity}_seed{seed}"
    result = trainer.main(
        [
            *task.args,
            *options_of(method, sparsity, group),
            "--seed",
            str(seed),
            "--total-steps",
            str(task.total_steps),
            "--eval-every",
            str(task.eval_every),
            "--target-value",
            str(task.threshold),
            "--device",
            "cpu",
            "--no-progress",
            "--run-name",
            name,
            "--log-dir",
            f"{root}/runs",
            "--checkpoint-dir",
            f"{root}/checkpoints",
            "--checkpoint-every",
            "0",
            "--checkpoint-minutes",
            "0",
        ]
    )
    returns = [metrics["return"] for _, metrics in result.evaluations]
    final = float(np.mean(returns[-2:])) if returns else math.nan
    return Run(
        task_name,
        method,
        0.0 if method == "dense" else sparsity,
        seed,
        result.env_steps,
        result.wall_seconds,
        result.steps_to_target,
        final,
        max(returns, default=math.nan),
        dict(result.extra),
        group,
    )


def _mean_std(values: Sequence[float], digits: int = 0) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:,.{digits}f}"
    return f"{np.mean(values):,.{digits}f} ± {np.std(values):,.{digits}f}"


def _relative(score: float, dense: float, floor: float) -> float:
    """Score relative to dense, 100 = dense, 0 = acting at random (the task's floor)."""
    return 100 * (score - floor) / (dense - floor) if dense != floor else math.nan


def _flops(members: list[Run], name: str) -> str:
    values = [float(run.extra[name].rstrip("x")) for run in members if name in run.extra]
    return f"{np.mean(values):.3f}x" if values else "1x"


def print_tables(runs: list[Run]) -> None:
    for group, label in (("main", "method"), ("ablation", "ablation")):
        chosen = [run for run in runs if run.group == group]
        if group == "ablation":
            chosen = [
                run
                for run in runs
                if run.task == ABLATION_TASK
                and run.group == "main"
                and (run.method == "dense" or (run.method == "rlx2" and run.sparsity == 0.9))
            ] + chosen
        if not any(run.group == group for run in chosen):
            continue
        print(
            f"\n| task | {label} | sparsity | seeds | final return | vs dense | reached | env steps to target | "
            "train FLOPs | inference FLOPs | wall s |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for task_name in dict.fromkeys(run.task for run in chosen if run.group == group):
            task = TASKS[task_name]
            dense_runs = [run for run in runs if run.task == task_name and run.method == "dense"]
            dense = float(np.mean([run.final_return for run in dense_runs])) if dense_runs else math.nan
            keys = dict.fromkeys((run.method, run.sparsity) for run in chosen if run.task == task_name)
            for method, sparsity in keys:
                members = [
                    run for run in chosen if run.task == task_name and run.method == method and run.sparsity == sparsity
                ]
                reached = [run for run in members if run.steps_to_target is not None]
                final = [run.final_return for run in members]
                print(
                    f"| {task_name} | {method} | {sparsity:.0%} | {len(members)} | {_mean_std(final, 1)} | "
                    f"{_relative(float(np.mean(final)), dense, task.floor):.1f}% | {len(reached)}/{len(members)} | "
                    f"{_mean_std([run.steps_to_target for run in reached])} | {_flops(members, 'train_flops')} | "
                    f"{_flops(members, 'inference_flops')} | {np.mean([run.wall_seconds for run in members]):.0f} |"
                )


def inference_table(width: int = 256, depth: int = 3, batches: Sequence[int] = (1, 256), repeats: int = 200) -> None:
    """CPU time per forward of an MLP (``depth`` hidden layers of ``width``) with dense and
    with CSR weights, at 90% and 95% sparsity (Erdős-Rényi over the layers), one thread."""
    import torch
    from torch import nn

    from hmarl.core import UpdateEngine, csr_inference, export_sparse
    from hmarl.core.engine import EngineConfig
    from hmarl.core.sparse import SparseTraining

    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    sizes = [17, *([width] * depth)]
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    layers.append(nn.Linear(width, 6))
    dense = nn.Sequential(*layers)
    print("\n| network | sparsity | batch | dense µs | CSR µs | speed-up | checkpoint bytes (dense -> sparse) |")
    print("|---|---|---|---|---|---|---|")
    for sparsity in (0.9, 0.95):
        net = copy.deepcopy(dense)
        SparseTraining(UpdateEngine({"net": net}, EngineConfig(), 1), sparsity)
        sparse_net = csr_inference(net)
        sizes_bytes = []
        for state in (net.state_dict(), export_sparse(net)):
            path = Path("/tmp") / f"rlx2_export_{sparsity}.pt"
            torch.save(state, path)
            sizes_bytes.append(path.stat().st_size)
        for batch in batches:
            x = torch.randn(batch, 17)
            timings = []
            for model in (net, sparse_net):
                with torch.no_grad():
                    for _ in range(20):
                        model(x)
                    start = time.perf_counter()
                    for _ in range(repeats):
                        model(x)
                    timings.append((time.perf_counter() - start) / repeats * 1e6)
            print(
                f"| MLP 17-{width}x{depth}-6 | {sparsity:.0%} | {batch} | {timings[0]:.1f} | {timings[1]:.1f} | "
                f"{timings[0] / timings[1]:.2f}x | {sizes_bytes[0]:,} -> {sizes_bytes[1]:,} |"
            )


def main(argv: Sequence[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), choices=list(TASKS), help="tasks to run")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="methods to run")
    parser.add_argument(
        "--sparsities", nargs="+", type=float, default=list(SPARSITIES), help="sparsities of the sparse methods"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration (0, 1, ...)")
    parser.add_argument("--ablations", action="store_true", help=f"RLx2 at 90%% on {ABLATION_TASK}, each component removed")
    parser.add_argument("--inference", action="store_true", help="CSR against dense CPU inference, then stop")
    parser.add_argument("--long", action="store_true", help="add SAC on HalfCheetah-v5 (needs the mujoco extra)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once, one thread each")
    parser.add_argument("--out", default="runs/rlx2.jsonl", help="append each finished run here")
    parser.add_argument("--root", default="runs/rlx2", help="logs and checkpoints go under here")
    parser.add_argument("--table-only", action="store_true", help="print the tables of the runs in --out and stop")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.workers < 1:
        raise ValueError(f"--seeds and --workers must be >= 1, got {args.seeds} and {args.workers}")
    for sparsity in args.sparsities:
        if not 0 < sparsity < 1:
            raise ValueError(f"--sparsities must lie in (0, 1), got {sparsity}")
    if args.inference:
        inference_table()
        return []
    out = Path(args.out)
    if args.table_only:
        runs = [Run(**json.loads(line)) for line in out.read_text().splitlines()]
        print_tables(runs)
        return runs
    tasks = [*args.tasks, *(["halfcheetah_sac"] if args.long and "halfcheetah_sac" not in args.tasks else [])]
    jobs = []
    if args.ablations:
        jobs += [
            (ABLATION_TASK, name, 0.9, seed, "ablation") for seed in range(args.seeds) for name in ABLATIONS if name != "rlx2"
        ]
    else:
        for task in tasks:
            for seed in range(args.seeds):
                for method in args.methods:
                    for sparsity in [0.0] if method == "dense" else args.sparsities:
                        jobs.append((task, method, sparsity, seed, "main"))
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            run = json.loads(line)
            done.add((run["task"], run["method"], run["sparsity"], run["seed"], run["group"]))
    jobs = [job for job in jobs if job not in done]
    runs = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [
            pool.submit(run_one, task, method, sparsity, seed, args.root, group)
            for task, method, sparsity, seed, group in jobs
        ]
        for future in futures:
            run = future.result()
            runs.append(run)
            with out.open("a") as stream:
                stream.write(json.dumps(asdict(run)) + "\n")
            print(f"finished {run.task} {run.method} {run.sparsity} seed {run.seed}: {run.final_return:.1f}", flush=True)
    everything = [Run(**json.loads(line)) for line in out.read_text().splitlines()]
    print_tables(everything)
    return runs


if __name__ == "__main__":
    main()
