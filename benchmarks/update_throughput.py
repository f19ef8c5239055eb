"""Samples per second of one DQN update through the update engine, against the
machine's own dense matmul peak.

The network is DQN's 2x256 MLP on the trash-collection room observation (606 floats,
7 actions). One update samples a batch from a device replay, runs the online network
on s and s' (double Q), the target network on s', the backward pass and the optimiser
step. FLOPs per sample count the matrix multiplies of those passes; the peak is a large
square matmul in the dtype the update computes in (fp32 on the CPU, bf16 on CUDA).

    python benchmarks/update_throughput.py
    python benchmarks/update_throughput.py --devices cpu cuda --batch-sizes 64 4096
    python benchmarks/update_throughput.py --against 0d5d80b --batch-sizes 64 4096   # this tree against a commit
    python benchmarks/update_throughput.py --modes none default max-autotune       # eager against compiled

Each ``--modes`` entry is a column measured in the same run: ``none`` is the eager
update, ``default`` and ``max-autotune`` are ``--compile`` modes, and a ``+graphs``
suffix adds ``--cuda-graphs`` (CUDA only). The first mode is the one the FLOP columns
describe; the others give samples per second and their ratio to it. Compilation happens
before the clock starts (the first update of each agent is a warm-up).

``--against REV`` measures this tree's engine and the one of commit ``REV`` (extracted
with ``git archive``) in alternating subprocesses, ``--rounds`` times each, so that both
see the same machine load; the table gives each side's median and the median of the
rounds' ratios. Pin one thread (``OMP_NUM_THREADS=1``) for CPU figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _trees import extract, import_from  # noqa: E402

if "--tree" in sys.argv:
    import_from(sys.argv[sys.argv.index("--tree") + 1])

import torch  # noqa: E402

from hmarl.agents.dqn import DQN, DQNConfig  # noqa: E402

ROOM_OBS_DIM = 11 * 11 * 5 + 1
ROOM_ACTIONS = 7
HIDDEN_SIZES = (256, 256)
BATCH_SIZES = (64, 256, 1024, 4096, 16384)
MODES = ("none", "default", "max-autotune", "default+graphs", "max-autotune+graphs")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_rate(run: Callable[[], None], work: float, device: torch.device, repeats: int, seconds: float) -> float:
    """Median of ``repeats`` measurements of ``work`` per second, each at least ``seconds`` long."""
    run()
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    calls = max(1, int(seconds / max(time.perf_counter() - start, 1e-9)))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        synchronize(device)
        rates.append(calls * work / (time.perf_counter() - start))
    return statistics.median(rates)


def matmul_peak(device: torch.device, repeats: int, seconds: float) -> float:
    """Dense matmul FLOP/s of a large square product in the update's compute dtype."""
    size = 4096 if device.type == "cuda" else 2048
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    return median_rate(lambda: torch.matmul(a, b, out=out), 2.0 * size**3, device, repeats, seconds)


def flops_per_sample(obs_dim: int, hidden_sizes: Sequence[int], n_actions: int) -> int:
    """Matmul FLOPs per sample: three forward passes (online on s and s', target on s')
    and the backward pass (weight gradients everywhere, input gradients except for the
    first layer, whose input is the observation)."""
    sizes = [obs_dim, *hidden_sizes, n_actions]
    forward = sum(2 * fan_in * fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    backward = 2 * forward - 2 * sizes[0] * sizes[1]
    return 3 * forward + backward


def mode_options(mode: str) -> dict[str, Any]:
    """The engine options of a ``--modes`` entry (empty for eager: older trees lack them)."""
    compile_mode, _, graphs = mode.partition("+")
    return {} if mode == "none" else {"compile": compile_mode, "cuda_graphs": bool(graphs)}


def filled_agent(batch_size: int, device: torch.device, mode: str = "none") -> DQN:
    capacity = max(4 * batch_size, 16_384)
    streams = 1024
    config = DQNConfig(
        batch_size=batch_size,
        buffer_size=capacity,
        hidden_sizes=HIDDEN_SIZES,
        use_action_mask=False,
        **mode_options(mode),
    )
    agent = DQN(config, ROOM_OBS_DIM, ROOM_ACTIONS, streams, total_steps=10**6, total_updates=10**6, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    for _ in range(capacity // streams):
        agent.replay.add(
            {
                "observation": torch.rand(streams, ROOM_OBS_DIM, device=device, generator=generator),
                "action": torch.randint(ROOM_ACTIONS, (streams,), device=device, generator=generator),
                "reward": torch.rand(streams, device=device, generator=generator),
                "next_observation": torch.rand(streams, ROOM_OBS_DIM, device=device, generator=generator),
                "terminated": torch.rand(streams, device=device, generator=generator) < 0.01,
                "truncated": torch.zeros(streams, dtype=torch.bool, device=device),
            }
        )
    return agent


def measure(device: torch.device, batch_sizes: Sequence[int], repeats: int, seconds: float) -> dict[int, float]:
    """Median samples per second of one update at each batch size."""
    rates = {}
    for batch_size in batch_sizes:
        agent = filled_agent(batch_size, device)
        rates[batch_size] = median_rate(agent.update, batch_size, device, repeats, seconds)
        del agent
    return rates


def _worker_rates(tree: Path, args: argparse.Namespace) -> dict[int, float]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--tree",
        str(tree),
        "--worker",
        "--devices",
        args.devices[0],
        "--batch-sizes",
        *map(str, args.batch_sizes),
        "--repeats",
        str(args.repeats),
        "--seconds",
        str(args.seconds),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout
    return {int(batch): rate for batch, rate in json.loads(output.splitlines()[-1]).items()}


def compare(args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    """This tree's engine against commit ``args.against``'s, in alternating subprocesses."""
    with tempfile.TemporaryDirectory() as scratch:
        old = extract(args.against, Path(scratch) / "old")
        rounds: dict[str, list[dict[int, float]]] = {"new": [], "old": []}
        for _ in range(args.rounds):
            rounds["new"].append(_worker_rates(REPO, args))
            rounds["old"].append(_worker_rates(old, args))
    print(
        f"DQN update on {args.devices[0]}, this tree against {args.against}, {args.rounds} alternating rounds, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(f"{'batch':>7}{'new samples/s':>15}{'old samples/s':>15}{'new/old (median of rounds)':>28}")
    table = {}
    for batch in args.batch_sizes:
        new = [r[batch] for r in rounds["new"]]
        old_rates = [r[batch] for r in rounds["old"]]
        ratio = statistics.median(n / o for n, o in zip(new, old_rates, strict=True))
        table[batch] = {"new": statistics.median(new), "old": statistics.median(old_rates), "ratio": ratio}
        print(f"{batch:>7}{table[batch]['new']:>15,.0f}{table[batch]['old']:>15,.0f}{ratio:>28.3f}")
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", default=None, help="devices to measure (default: cpu, and cuda when present)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(BATCH_SIZES), help="batch sizes to measure")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per row; the table shows their median")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum length of one measurement")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=None,
        choices=MODES,
        help="update modes measured side by side (default: none default, and default+graphs on CUDA)",
    )
    parser.add_argument("--against", default="", help="compare this tree's engine with the one of this git commit")
    parser.add_argument("--rounds", type=int, default=5, help="with --against: alternating measurements of each side")
    parser.add_argument("--tree", default="", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        rates = measure(torch.device(args.devices[0]), args.batch_sizes, args.repeats, args.seconds)
        print(json.dumps(rates))
        return
    if args.against:
        args.devices = args.devices or ["cpu"]
        compare(args)
        return
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    per_sample_flops = flops_per_sample(ROOM_OBS_DIM, HIDDEN_SIZES, ROOM_ACTIONS)
    print(
        f"DQN update, MLP {'x'.join(map(str, HIDDEN_SIZES))} on {ROOM_OBS_DIM} inputs, {ROOM_ACTIONS} actions; "
        f"{per_sample_flops / 1e6:.3f} MFLOP per sample; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    for name in devices:
        device = torch.device(name)
        modes = args.modes or ["none", "default"] + (["default+graphs"] if device.type == "cuda" else [])
        if device.type != "cuda" and any("+graphs" in mode for mode in modes):
            raise ValueError(f"--modes {' '.join(modes)}: a +graphs mode needs a CUDA device, got --devices {name}")
        first, others = modes[0], modes[1:]
        relative = f"per-sample x vs {args.batch_sizes[0]}"
        print(
            f"{'device':<8}{'batch':>7}{first + ' ms':>16}{'samples/s':>13}{'GFLOP/s':>10}{'% peak':>8}{relative:>22}"
            + "".join(f"{mode + ' ms':>22}{'x ' + first:>10}" for mode in others)
        )
        peak = matmul_peak(device, args.repeats, args.seconds)
        print(f"{name:<8}{'matmul':>7}{'':>16}{'':>13}{peak / 1e9:>10.1f}{100.0:>7.0f}%")
        baseline = None
        for batch_size in args.batch_sizes:
            rates = {}
            for mode in modes:
                agent = filled_agent(batch_size, device, mode)
                rates[mode] = median_rate(agent.update, batch_size, device, args.repeats, args.seconds)
                del agent
            samples_per_second = rates[first]
            flops = samples_per_second * per_sample_flops
            baseline = baseline or samples_per_second
            print(
                f"{name:<8}{batch_size:>7}{1e3 * batch_size / samples_per_second:>16.3f}{samples_per_second:>13,.0f}"
                f"{flops / 1e9:>10.1f}{100 * flops / peak:>7.1f}%{samples_per_second / baseline:>22.2f}"
                + "".join(
                    f"{1e3 * batch_size / rates[mode]:>22.3f}{rates[mode] / samples_per_second:>10.2f}" for mode in others
                )
            )


if __name__ == "__main__":
    main()
