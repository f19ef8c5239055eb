"""Learning curves from run logs: the mean over seeds with a shaded spread.

Every trainer writes TensorBoard scalars under ``runs/<run-name>`` (``eval/return``,
``episode/return``, ``train/loss``, ...; see ``hmarl/training/logger.py``). This script
reads one tag from several runs, groups the runs by label (one run per seed), aligns the
seeds on environment steps and draws each group's mean and spread:

    python benchmarks/plots.py --runs "hQmix=runs/room_hqmix_s*" \\
        --runs "Ind-hDQN=runs/room_ind_hdqn_s*" --tag eval/return \\
        --out docs/results/img/room.png --title "room"

Alignment: the steps of a group are the union of the steps its seeds logged; a seed's
value between two of its own logged steps is interpolated linearly, and it is never
extrapolated beyond its first or last step (unless ``--hold-last``). By default a group's
curve covers only the steps that all its seeds cover (``--span common``).

The saved image records the command that made it: in the PNG's ``Command`` and
``Description`` text chunks (SVG: its description), and in the printed caption.
"""

from __future__ import annotations

import argparse
import csv
import glob
import math
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EVENT_PATTERN = "events.out.tfevents.*"
SPREADS = ("std", "sem", "minmax")
SPANS = ("common", "all")
FORMATS = (".png", ".svg")


class PlotError(ValueError):
    """Bad input: no runs, a tag that is not logged, an unusable option."""


@dataclass
class Curve:
    """One seed's logged values of a tag, sorted by environment step."""

    run: Path
    steps: np.ndarray
    values: np.ndarray


@dataclass
class Aggregate:
    """A group's seeds aligned on common steps: mean, lower and upper spread, seeds per step."""

    label: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    count: np.ndarray
    curves: list[Curve]


def parse_group(text: str) -> tuple[str, str]:
    """``LABEL=PATTERN`` or a bare ``PATTERN`` (labelled by itself)."""
    label, sep, pattern = text.partition("=")
    if not sep:
        return text, text
    if not label or not pattern:
        raise PlotError(f"--runs {text!r}: expected LABEL=PATTERN with both parts non-empty")
    return label, pattern


def find_runs(pattern: str) -> list[Path]:
    """Run directories that a glob (or a plain directory) names: those holding event files."""
    matches = sorted(glob.glob(os.path.expanduser(pattern)))
    runs = []
    for match in matches:
        path = Path(match)
        if path.is_file() and path.name.startswith("events.out.tfevents."):
            path = path.parent
        if path.is_dir() and any(path.rglob(EVENT_PATTERN)) and path not in runs:
            runs.append(path)
    return runs


def read_tag(run: Path, tag: str) -> Curve:
    """The values of ``tag`` in every event file under ``run``; a later file wins a shared step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(run.rglob(EVENT_PATTERN), key=lambda p: (p.stat().st_mtime, p.name))
    if not files:
        raise PlotError(f"{run}: no TensorBoard event files ({EVENT_PATTERN})")
    by_step: dict[int, float] = {}
    seen_tags: set[str] = set()
    for file in files:
        accumulator = EventAccumulator(str(file), size_guidance={"scalars": 0})
        accumulator.Reload()
        tags = accumulator.Tags().get("scalars", [])
        seen_tags.update(tags)
        if tag in tags:
            for event in accumulator.Scalars(tag):
                by_step[int(event.step)] = float(event.value)
    if not by_step:
        known = ", ".join(sorted(seen_tags)) or "none"
        raise PlotError(f"{run}: tag {tag!r} is not logged (scalar tags there: {known})")
    steps = np.array(sorted(by_step), dtype=np.int64)
    values = np.array([by_step[s] for s in steps], dtype=np.float64)
    return Curve(run, steps, values)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over the last ``window`` logged points (fewer at the start)."""
    if window <= 1:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def aggregate(
    label: str,
    curves: Sequence[Curve],
    spread: str = "std",
    span: str = "common",
    hold_last: bool = False,
    smoothing: int = 1,
) -> Aggregate:
    """Align seeds on environment steps and reduce them to mean and spread at each step."""
    if spread not in SPREADS:
        raise PlotError(f"spread must be one of {SPREADS}, got {spread!r}")
    if span not in SPANS:
        raise PlotError(f"span must be one of {SPANS}, got {span!r}")
    if not curves:
        raise PlotError(f"{label}: no runs")
    steps = np.unique(np.concatenate([c.steps for c in curves]))
    table = np.full((len(curves), len(steps)), np.nan)
    for row, curve in enumerate(curves):
        values = smooth(curve.values, smoothing)
        inside = steps >= curve.steps[0]
        inside &= True if hold_last else steps <= curve.steps[-1]
        table[row, inside] = np.interp(steps[inside], curve.steps, values)
    count = np.sum(~np.isnan(table), axis=0)
    keep = count == len(curves) if span == "common" else count > 0
    if not keep.any():
        raise PlotError(f"{label}: the seeds share no logged step (try --span all or --hold-last)")
    steps, table, count = steps[keep], table[:, keep], count[keep]
    mean = np.nanmean(table, axis=0)
    if spread == "minmax":
        low, high = np.nanmin(table, axis=0), np.nanmax(table, axis=0)
    else:
        deviation = np.nanstd(table, axis=0)
        if spread == "sem":
            deviation = deviation / np.sqrt(count)
        low, high = mean - deviation, mean + deviation
    return Aggregate(label, steps, mean, low, high, count, list(curves))


def steps_to_target(curve: Curve, target: float) -> int | None:
    """The first logged step at which the value reaches ``target``."""
    reached = np.nonzero(curve.values >= target)[0]
    return int(curve.steps[reached[0]]) if len(reached) else None


def recorded_command(argv: Sequence[str]) -> str:
    return shlex.join(["python", "benchmarks/plots.py", *argv])


def draw(groups: Sequence[Aggregate], args: argparse.Namespace, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(args.width, args.height), dpi=args.dpi)
    # Line styles and markers differ per group, so curves that coincide stay visible.
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]
    for index, group in enumerate(groups):
        seeds = len(group.curves)
        linestyle, marker = styles[index % len(styles)]
        markevery = max(1, len(group.steps) // 20)
        (line,) = axes.plot(
            group.steps,
            group.mean,
            linestyle=linestyle,
            marker=marker,
            markersize=4,
            markevery=markevery,
            label=f"{group.label} ({seeds} seed{'s' * (seeds != 1)})",
        )
        axes.fill_between(group.steps, group.low, group.high, color=line.get_color(), alpha=0.2, linewidth=0)
    if args.target is not None:
        axes.axhline(args.target, color="0.4", linestyle="--", linewidth=1, label=f"target {args.target:g}")
    spread_name = {"std": "± std", "sem": "± s.e.m.", "minmax": "min-max"}[args.spread]
    axes.set_xlabel(args.xlabel)
    axes.set_ylabel(args.ylabel or f"{args.tag} (mean, shaded {spread_name} over seeds)")
    if args.title:
        axes.set_title(args.title)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Description": command}
    if out.suffix.lower() == ".png":
        metadata.update({"Command": command, "Software": "hmarl benchmarks/plots.py"})
    figure.savefig(out, metadata=metadata)
    plt.close(figure)


def write_csv(path: Path, groups: Sequence[Aggregate]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "step", "mean", "low", "high", "seeds"])
        for group in groups:
            for row in zip(group.steps, group.mean, group.low, group.high, group.count, strict=True):
                writer.writerow([group.label, int(row[0]), f"{row[1]:.6g}", f"{row[2]:.6g}", f"{row[3]:.6g}", int(row[4])])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/plots.py",
        description="Learning curves (mean and spread over seeds) from hmarl's TensorBoard run logs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--runs",
        action="append",
        required=True,
        metavar="LABEL=PATTERN",
        help="a group of runs, one per seed: a label, '=', and a glob or directory of run directories "
        "(each holding events.out.tfevents.* files, e.g. runs/<run-name>); repeat for each curve; "
        "a bare PATTERN is labelled by itself",
    )
    parser.add_argument(
        "--tag", default="eval/return", help="the scalar to plot (eval/return, episode/return, train/loss, ...)"
    )
    parser.add_argument("--out", required=True, help="image to write (.png or .svg); its folder is created")
    parser.add_argument("--title", default="", help="title above the plot")
    parser.add_argument("--xlabel", default="environment steps", help="label of the x axis")
    parser.add_argument("--ylabel", default="", help="label of the y axis (default: the tag and the spread)")
    parser.add_argument(
        "--spread",
        choices=SPREADS,
        default="std",
        help="shaded band: standard deviation, standard error of the mean, or min to max over seeds",
    )
    parser.add_argument(
        "--span",
        choices=SPANS,
        default="common",
        help="steps a curve covers: those all its seeds logged up to (common) or those any seed did "
        "(all; the mean then rests on fewer seeds at the ends)",
    )
    parser.add_argument(
        "--hold-last",
        action="store_true",
        help="carry each seed's last value to the group's last step (for runs stopped at a target with --stop-at-target)",
    )
    parser.add_argument(
        "--smooth", type=int, default=1, help="running mean over this many logged points per seed before aligning (1: none)"
    )
    parser.add_argument(
        "--target",
        type=float,
        default=None,
        help="draw this value as a dashed line and print each seed's first step at or above it",
    )
    parser.add_argument("--csv", default="", help="also write the aligned mean/low/high per step to this CSV file")
    parser.add_argument("--width", type=float, default=6.4, help="figure width in inches")
    parser.add_argument("--height", type=float, default=4.0, help="figure height in inches")
    parser.add_argument("--dpi", type=int, default=100, help="resolution of a PNG")
    return parser


def main(argv: Sequence[str] | None = None) -> list[Aggregate]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if Path(args.out).suffix.lower() not in FORMATS:
        raise PlotError(f"--out {args.out!r}: the image must end in one of {FORMATS}")
    if args.smooth < 1:
        raise PlotError(f"--smooth must be at least 1, got {args.smooth}")
    if args.target is not None and not math.isfinite(args.target):
        raise PlotError(f"--target must be a finite number, got {args.target}")
    groups = []
    for text in args.runs:
        label, pattern = parse_group(text)
        runs = find_runs(pattern)
        if not runs:
            raise PlotError(f"--runs {text!r}: no run directories with TensorBoard event files match {pattern!r}")
        curves = [read_tag(run, args.tag) for run in runs]
        groups.append(aggregate(label, curves, args.spread, args.span, args.hold_last, args.smooth))
    command = recorded_command(argv)
    draw(groups, args, command)
    if args.csv:
        write_csv(Path(args.csv), groups)
    for group in groups:
        print(
            f"{group.label}: {len(group.curves)} runs, steps {group.steps[0]}-{group.steps[-1]}, "
            f"final mean {group.mean[-1]:.4g}"
        )
        if args.target is not None:
            for curve in group.curves:
                reached = steps_to_target(curve, args.target)
                print(f"  {curve.run}: first step >= {args.target:g}: {'not reached' if reached is None else reached}")
    print(f"wrote {args.out}")
    print(f"made by: {command}")
    return groups


if __name__ == "__main__":
    try:
        main()
    except PlotError as error:
        sys.exit(f"plots.py: error: {error}")
