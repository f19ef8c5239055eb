"""Does this tree train exactly as commit REV did? Short seeded runs of each trainer at
their defaults (uniform replay), in both trees, with the summary lines compared.

    python benchmarks/same_trajectories.py --against 0d5d80b
    python benchmarks/same_trajectories.py --against 0d5d80b --runs dqn sac_n

Each run goes in its own subprocess on one thread (``OMP_NUM_THREADS=1``); a run's
summary line, less its wall clock and steps per second, must be the same character for
character. The table prints both lines' returns and whether the whole line matched.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _trees import extract, import_from

RUNS = {
    "dqn": ["dqn", "--env", "CartPole-v1", "--total-steps", "6000", "--eval-every", "3000", "--seed", "1"],
    "ae_dqn": ["ae_dqn", "--total-steps", "6000", "--eval-every", "3000", "--eval-episodes", "10"],
    "sac_n": [
        "sac_n",
        "online",
        "--total-steps",
        "3000",
        "--learning-starts",
        "1000",
        "--random-steps",
        "1000",
        "--eval-every",
        "3000",
        "--eval-episodes",
        "2",
        "--hidden-sizes",
        "64",
        "64",
    ],
    "hqmix": ["hqmix", "--total-steps", "12500", "--eval-every", "12500", "--eval-episodes", "20"],
}
#: Fields of a summary line that depend on the machine, not on the trajectory, and
#: backward_rows, which older trees do not print (the updates and batch decide it).
TIMING = re.compile(r" (wall|steps_per_s|backward_rows)=\S+")


def summary_of(tree: Path | None, run: str, scratch: Path) -> str:
    """The summary line (timing taken out) of one run in ``tree`` (None: this tree)."""
    trainer, *options = RUNS[run]
    name = f"{run}_{'this' if tree is None else 'rev'}"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        str(tree or ""),
        trainer,
        *options,
        "--run-name",
        name,
        "--log-dir",
        str(scratch / "runs"),
        "--checkpoint-dir",
        str(scratch / "checkpoints"),
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=scratch, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("summary ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{run} in {tree or 'this tree'} failed:\n{done.stderr[-2000:]}")
    return TIMING.sub("", lines[-1]).replace(f"run={name}", "run=")


def field(line: str, name: str) -> str:
    match = re.search(rf" {name}=(not reached|\S+)", line)
    return match.group(1) if match else "-"


def worker(argv: list[str]) -> None:
    tree, trainer, *options = argv
    if tree:
        import_from(tree)
    import importlib

    import torch

    torch.set_num_threads(1)
    importlib.import_module(f"hmarl.trainers.{trainer}").main(options)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        worker(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="the git commit to compare this tree with")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS), help="which runs to compare")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        old = extract(args.against, scratch / "rev")
        print(f"this tree against {args.against}: summary lines without wall clock, one thread each")
        print(f"{'run':<8}{'this eval_return':>18}{'rev eval_return':>17}{'this steps_to_target':>22}{'same line':>11}")
        mismatches = 0
        for run in args.runs:
            this, rev = summary_of(None, run, scratch), summary_of(old, run, scratch)
            same = this == rev
            mismatches += not same
            print(
                f"{run:<8}{field(this, 'eval_return'):>18}{field(rev, 'eval_return'):>17}"
                f"{field(this, 'steps_to_target'):>22}{'yes' if same else 'NO':>11}"
            )
            if not same:
                print(f"  this: {this}\n  rev:  {rev}")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
