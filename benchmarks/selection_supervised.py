"""Selective-Backprop on a supervised task, where the paper's effect can be checked on a
CPU: scikit-learn's bundled digits (no download), a small MLP, Adam.

    python benchmarks/selection_supervised.py                 # clean and 20% flipped labels, seeds 0-2
    python benchmarks/selection_supervised.py --noise 0.2 --selections none adapt-sb

Every method trains through the update core (``UpdateEngine`` drawing from a
``ReplayBuffer`` that holds the training set), with the backward batch fixed, so the
methods differ only in which rows they backpropagate: ``none`` draws the batch; the
selective ones score candidate batches without gradients and backpropagate the rows
they keep (``hmarl.core.selection``). The test error is measured every ``--eval-every``
updates, outside the clock. A table row gives, over seeds, the backward rows and the
wall clock (training only) to the first evaluation at or under the target test error,
and the final test error. Flipped labels are flipped in the training set only.
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hmarl.core import (
    SELECTIONS,
    EngineConfig,
    Field,
    ReplayBuffer,
    RowLoss,
    SelectionConfig,
    UpdateEngine,
    check_choice,
    make_selection,
)
from hmarl.nets import mlp


@dataclass
class Run:
    selection: str
    noise: float
    seed: int
    rows_to_target: int | None
    seconds_to_target: float | None
    final_error: float
    backward_rows: int
    scored_rows: int
    curve_periods: dict[str, int]


def digits(noise: float, seed: int, test_rows: int = 497) -> tuple[torch.Tensor, ...]:
    """Train and test splits of the digits, features in [0, 1]; ``noise`` of the training
    labels replaced by another class at random."""
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.target))
    x = torch.tensor(data.data[order] / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target[order], dtype=torch.long)
    x_train, y_train, x_test, y_test = x[test_rows:], y[test_rows:].clone(), x[:test_rows], y[:test_rows]
    flipped = torch.tensor(rng.random(len(y_train)) < noise)
    shift = torch.tensor(rng.integers(1, 10, len(y_train)))
    y_train[flipped] = (y_train[flipped] + shift[flipped]) % 10
    return x_train, y_train, x_test, y_test


def train_one(selection: str, noise: float, seed: int, args: argparse.Namespace) -> Run:
    x_train, y_train, x_test, y_test = digits(noise, seed)
    torch.manual_seed(seed)
    net = mlp(x_train.shape[1], list(args.hidden), 10)
    config = SelectionConfig(selection=selection, selection_beta=args.beta)
    engine_config = EngineConfig(batch_size=args.batch_size, base_batch_size=args.batch_size, lr=args.lr, max_grad_norm=0.0)
    engine = UpdateEngine({"net": net}, engine_config, total_updates=args.updates, seed=seed)
    engine.selection = make_selection(config, seed=seed)
    data = ReplayBuffer(
        {"x": Field((x_train.shape[1],)), "y": Field((), torch.long)}, capacity=len(y_train), num_streams=1, seed=seed
    )
    data.extend({"x": x_train, "y": y_train})

    def loss(batch):
        return RowLoss(F.cross_entropy(net(batch["x"]), batch["y"], reduction="none")), {}

    @torch.no_grad()
    def test_error() -> float:
        return float((net(x_test).argmax(1) != y_test).float().mean())

    seconds = 0.0
    rows_to_target = seconds_to_target = None
    errors = []
    for update in range(1, args.updates + 1):
        start = time.perf_counter()
        engine.update(loss, data)
        seconds += time.perf_counter() - start
        if update % args.eval_every == 0:
            errors.append(test_error())
            if rows_to_target is None and errors[-1] <= args.target_error[noise > 0]:
                rows_to_target, seconds_to_target = engine.backward_rows, seconds
    # The final error is the mean of the last five evaluations: one is noisy on 497 digits.
    periods = dict(zip(engine.selection.names, engine.selection.pulls, strict=True)) if selection == "adapt-sb" else {}
    return Run(
        selection,
        noise,
        seed,
        rows_to_target,
        seconds_to_target,
        float(np.mean(errors[-5:])),
        engine.backward_rows,
        engine.scored_rows,
        periods,
    )


def _mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 0) -> str:
    if not values:
        return "-"
    values = [value * scale for value in values]
    return f"{np.mean(values):,.{digits}f} ± {np.std(values):,.{digits}f}"


def _periods(runs: list[Run]) -> str:
    total = collections.Counter()
    for run in runs:
        total.update(run.curve_periods)
    return ", ".join(f"{name} {count}" for name, count in total.items()) or "-"


def print_table(runs: list[Run], targets: Sequence[float]) -> None:
    print(
        "| labels flipped | selection | reached | target test error | backward rows to target | "
        "wall s to target | final test error % | rows scored per backward row | AdaptSB's periods per curve |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for noise in dict.fromkeys(run.noise for run in runs):
        for selection in dict.fromkeys(run.selection for run in runs):
            members = [run for run in runs if run.noise == noise and run.selection == selection]
            reached = [run for run in members if run.rows_to_target is not None]
            print(
                f"| {noise:.0%} | {selection} | {len(reached)}/{len(members)} | {targets[noise > 0]:.1%} | "
                f"{_mean_std([run.rows_to_target for run in reached])} | "
                f"{_mean_std([run.seconds_to_target for run in reached], digits=2)} | "
                f"{_mean_std([run.final_error for run in members], 100, 2)} | "
                f"{np.mean([run.scored_rows / run.backward_rows for run in members]):.2f} | "
                f"{_periods(members)} |"
            )


def main(argv: Sequence[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--selections", nargs="+", default=list(SELECTIONS), help=f"of {', '.join(SELECTIONS)}")
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.2], help="fractions of labels flipped")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell (0, 1, ...)")
    parser.add_argument("--updates", type=int, default=600, help="updates per run")
    parser.add_argument("--batch-size", type=int, default=128, help="rows per backward pass")
    parser.add_argument("--hidden", type=int, nargs="+", default=[1024, 1024], help="hidden layer widths")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--beta", type=float, default=3.0, help="Selective-Backprop's exponent (prob_pow)")
    parser.add_argument("--eval-every", type=int, default=10, help="updates between test evaluations")
    parser.add_argument(
        "--target-error",
        type=float,
        nargs=2,
        default=[0.03, 0.05],
        help="target test error with clean labels and with flipped labels",
    )
    args = parser.parse_args(argv)
    for selection in args.selections:
        check_choice("selections", selection, SELECTIONS)
    if args.seeds < 1 or args.updates < 5 * args.eval_every or args.eval_every < 1:
        raise ValueError(
            f"--seeds must be >= 1 and --updates >= 5 * --eval-every >= 5, got {args.seeds}, "
            f"{args.updates} and {args.eval_every}"
        )
    if any(not 0.0 <= noise < 0.9 for noise in args.noise):
        raise ValueError(f"--noise must be in [0, 0.9), got {args.noise}")
    torch.set_num_threads(1)
    runs = []
    for noise in args.noise:
        for seed in range(args.seeds):
            for selection in args.selections:
                runs.append(train_one(selection, noise, seed, args))
                print(f"finished {selection} noise {noise} seed {seed}: {runs[-1]}", flush=True)
    print_table(runs, args.target_error)
    return runs


if __name__ == "__main__":
    main()
