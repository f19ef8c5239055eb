"""Search a trainer's hyperparameters on Ray Tune; BOIL reads whole learning curves.

    hmarl tune dqn --param gamma=0.8:1.0 --param lr=1e-5:1e-2:log --length total_steps=4000:40000 \\
        --budget 600 -- --env CartPole-v1 --eval-every 2000
    hmarl tune ind_hdqn --space space.yaml --searcher tpe --max-trials 20
    hmarl tune --resume tune_results/<study>        # continue a study that crashed or was stopped

Everything after ``--`` goes to the trainer as fixed options (`hmarl train <algorithm>
--help` lists them). The score of a trial is its last greedy evaluation of --metric; BOIL
models the whole curve. Each trial takes one core; --address (or RAY_ADDRESS) sends
the trials to an existing Ray cluster. ``python -m hmarl.tune`` is the same command.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hmarl.training.config import HelpFormatter

if TYPE_CHECKING:  # the study module imports Ray, which the command loads only when it runs
    from hmarl.tune.study import Study

EXIT_BAD_INPUT = 2


def build_parser(prog: str = "hmarl tune") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "algorithm",
        nargs="?",
        default="",
        help="a trainer of `hmarl train` (dqn, ind_hdqn, ...) or a trainer script (.py) with Config and main(argv)",
    )
    space = parser.add_argument_group("search space")
    space.add_argument("--space", default="", help="a YAML, TOML or JSON file with params, length and options")
    space.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH[:log]",
        help="a range over a config field of the trainer (repeat for more); ':log' samples on a log scale, "
        "integer fields take integers",
    )
    space.add_argument(
        "--length",
        default="",
        metavar="[NAME=]LOW:HIGH",
        help="the training-length range (default field: total_steps); BOIL and ASHA treat it as the curve's "
        "length, rounded to whole --eval-every periods",
    )
    search = parser.add_argument_group("search")
    search.add_argument(
        "--searcher",
        default="boil",
        choices=["boil", "random", "tpe", "asha"],
        help="boil, or a baseline: random search, Optuna's TPE, ASHA early stopping",
    )
    search.add_argument(
        "--budget", type=float, default=0.0, help="wall-clock seconds the study may run (0: no limit; then give --max-trials)"
    )
    search.add_argument("--max-trials", type=int, default=0, help="trials to run at most (0: no limit)")
    search.add_argument(
        "--metric", default="return", help="the evaluation metric a curve is made of (return, success, ...); it is maximised"
    )
    search.add_argument("--seed", type=int, default=0, help="seed of the searcher")
    ray_group = parser.add_argument_group("Ray and storage")
    ray_group.add_argument("--name", default="", help="name of the study (default: <algorithm>_<searcher>_<time>)")
    ray_group.add_argument(
        "--storage", default="tune_results", help="Ray Tune storage directory; the study lives in <storage>/<name>"
    )
    ray_group.add_argument(
        "--address",
        default="",
        help="HOST:PORT (or ray://HOST:PORT, or auto) of an existing Ray cluster; RAY_ADDRESS is read when this "
        "is empty; without either, Ray starts on this machine",
    )
    ray_group.add_argument(
        "--workers", type=int, default=0, help="trials at once on this machine (0: one per core); ignored on a cluster"
    )
    ray_group.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPU cores Ray reserves for each trial")
    ray_group.add_argument("--resume", default="", help="a study directory to continue (other options are its own)")
    output = parser.add_argument_group("output")
    output.add_argument(
        "--plot", default="", help="PNG of best score so far against wall clock (default: <storage>/<name>/best_so_far.png)"
    )
    output.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar of finished trials"
    )
    output.add_argument("--verbose", type=int, default=0, choices=[0, 1, 2], help="Ray Tune's own status output")
    return parser


def split_options(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the tune command's arguments, the trainer's fixed options after ``--``)."""
    argv = list(argv)
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


def make_study(args: argparse.Namespace, trainer_options: Sequence[str]) -> Study:
    """The checked study of the command line; every refusal names its argument."""
    from hmarl.tune.space import build_space, parse_range, read_space_file
    from hmarl.tune.study import Study
    from hmarl.tune.trial import OWNED_OPTIONS, TrainerRef

    if not args.algorithm:
        raise ValueError("algorithm is missing; give a trainer (e.g. dqn) or --resume a study directory")
    config_cls, _, _ = TrainerRef(args.algorithm).parts()
    data = read_space_file(args.space) if args.space else {}
    params = dict(data.get("params") or {})
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise ValueError(f"space={args.space!r}: params must map each field to {{low, high, log}}")
    for text in args.param:
        name, spec = parse_range("param", text)
        params[name] = spec
    length = data.get("length")
    if args.length:
        text = args.length if "=" in args.length else f"total_steps={args.length}"
        name, spec = parse_range("length", text)
        length = {"field": name, **spec}
    options = [*_options_of(data.get("options") or {}), *trainer_options]
    owned = [name for name in OWNED_OPTIONS if f"--{name.replace('_', '-')}" in options]
    if owned:
        raise ValueError(f"options: {owned} are set by each trial itself; leave them out")
    space = build_space(config_cls, params, length, options)
    if args.budget < 0 or args.max_trials < 0:
        raise ValueError(f"budget={args.budget} / max_trials={args.max_trials} are not valid; they must be >= 0")
    if not args.budget and not args.max_trials:
        raise ValueError("budget and max_trials are both 0; give --budget SECONDS or --max-trials N")
    if args.searcher in ("boil", "asha") and space.length is None:
        raise ValueError(f"searcher={args.searcher!r} needs a training length: give --length LOW:HIGH")
    if args.workers < 0 or args.cpus_per_trial <= 0:
        raise ValueError(f"workers={args.workers} must be >= 0 and cpus_per_trial={args.cpus_per_trial} > 0")
    name = args.name or f"{Path(args.algorithm).stem}_{args.searcher}_{time.strftime('%Y%m%d-%H%M%S')}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name={name!r} is not valid; use letters, digits, '_', '-' and '.'")
    study = Study(
        algorithm=str(Path(args.algorithm).resolve()) if args.algorithm.endswith(".py") else args.algorithm,
        space=space,
        searcher=args.searcher,
        metric=args.metric,
        budget_s=args.budget,
        max_trials=args.max_trials,
        seed=args.seed,
        name=name,
        storage=str(Path(args.storage).resolve()),
        cpus_per_trial=args.cpus_per_trial,
    )
    if study.directory.exists():
        raise ValueError(f"name={name!r}: {study.directory} exists; give another --name or --resume it")
    return study


def _options_of(values: dict) -> list[str]:
    from hmarl.tune.space import option_args

    return option_args(values)


def main(argv: Sequence[str] | None = None, prog: str = "hmarl tune") -> int:
    """Run the command; returns the exit status."""
    own, trainer_options = split_options(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(own)
    from hmarl.tune import require_extra

    try:
        require_extra()
    except ImportError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from hmarl.tune.study import Study, best_so_far, check_address, format_rows, plot_best_so_far, run_study

    try:
        if args.resume:
            study = Study.load(args.resume)
        else:
            study = make_study(args, trainer_options)
        address = args.address or os.environ.get("RAY_ADDRESS", "")
        check_address(address)
    except (ValueError, FileNotFoundError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        f"study {study.name} in {study.directory}: {study.searcher} over "
        f"{', '.join(r.describe() for r in study.space.params)}"
        + (f", length {study.space.length.describe()}" if study.space.length else ""),
        flush=True,
    )
    try:
        rows = run_study(
            study,
            resume=bool(args.resume),
            address=address,
            num_cpus=args.workers or None,
            verbose=args.verbose,
            progress=args.progress,
        )
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_rows(rows))
    plot = args.plot or str(study.directory / "best_so_far.png")
    plot_best_so_far({study.searcher: [best_so_far(rows)]}, plot, title=study.name)
    done = [row for row in rows if row.status == "done"]
    if done:
        best = max(done, key=lambda row: row.score)
        print(f"best: trial {best.trial_id} score {best.score:.4g} with {best.values}")
    failed = len(rows) - len(done)
    print(f"{len(rows)} trials ({failed} failed); table: {study.directory / 'trials.csv'}; plot: {plot}")
    return 0


def entry_point() -> None:
    raise SystemExit(main(prog="python -m hmarl.tune"))
