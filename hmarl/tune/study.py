"""A study: one searcher over one search space of one trainer, run by Ray Tune.

Ray runs on this machine by default (one trial per core), or on an existing cluster
(``address``; ``RAY_ADDRESS`` is read as well). Trials and the searcher's state persist in
Ray Tune's storage under ``<storage>/<name>``; :func:`run_study` with ``resume=True``
continues a study that crashed or was stopped. A trial that fails is recorded as failed
and the study goes on.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from hmarl.tune.space import SearchSpace

STUDY_FILE = "study.json"
TRIALS_FILE = "trials.csv"
RUNS_DIR = "hmarl_runs"


@dataclass
class Study:
    """What a study searches and how; saved as ``study.json`` in its directory."""

    algorithm: str
    space: SearchSpace
    searcher: str = "boil"
    metric: str = "return"
    budget_s: float = 0.0
    max_trials: int = 0
    seed: int = 0
    name: str = "study"
    storage: str = "tune_results"
    cpus_per_trial: float = 1.0
    started: float = field(default_factory=time.time)

    @property
    def directory(self) -> Path:
        return Path(self.storage).resolve() / self.name

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["space"] = self.space.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Study:
        return cls(**{**data, "space": SearchSpace.from_dict(data["space"])})

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / STUDY_FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Study:
        path = Path(directory) / STUDY_FILE
        if not path.is_file():
            raise ValueError(f"resume={str(directory)!r} is not valid; it holds no {STUDY_FILE} (not a study directory)")
        return cls.from_dict(json.loads(path.read_text()))


@dataclass(frozen=True)
class TrialRow:
    """One trial of a study, as the table shows it."""

    trial_id: str
    status: str
    values: dict[str, Any]
    score: float
    evaluations: int
    train_seconds: float
    finished_s: float
    continues: str
    error: str = ""


def check_address(address: str) -> None:
    """Refuse, before any work, a cluster address that does not answer."""
    if address in ("", "local"):
        return
    if address == "auto":
        return
    host_port = address.split("://", 1)[-1]
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(
            f"address={address!r} is not valid; give HOST:PORT of a Ray head (e.g. 10.0.0.1:6379) or ray://HOST:PORT"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=5.0):
            pass
    except OSError as error:
        raise ValueError(
            f"address={address!r} is not reachable ({error}); start the head with `ray start --head --port={port}` "
            "or leave --address out to run on this machine"
        ) from None


def connect(address: str, num_cpus: int | None) -> None:
    """Ray on this machine (``num_cpus`` workers, default all cores) or on ``address``."""
    import ray

    if ray.is_initialized():
        return
    if address and address != "local":
        check_address(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as error:
            raise ValueError(f"address={address!r}: no Ray cluster there ({error})") from None
    else:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)


def run_study(
    study: Study,
    resume: bool = False,
    address: str = "",
    num_cpus: int | None = None,
    verbose: int = 0,
    progress: bool = True,
) -> list[TrialRow]:
    """Run (or with ``resume``, continue) ``study``; returns its trials, written to
    ``trials.csv`` beside it."""
    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from hmarl.tune.searchers import make_searcher
    from hmarl.tune.trial import run_trial

    # The experiment state (trials and the searcher's state) is saved at most this often; a
    # study is small, so a short period loses little when the driver dies.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    # Trials drawn but never started (the budget ran out first) have no metrics; not worth a warning each.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    connect(address or os.environ.get("RAY_ADDRESS", ""), num_cpus)
    directory = study.directory
    spec = {
        "algorithm": study.algorithm,
        "space": study.space.to_dict(),
        "metric": study.metric,
        "runs_dir": str(directory / RUNS_DIR),
        "cpus_per_trial": study.cpus_per_trial,
    }
    trainable = tune.with_resources(tune.with_parameters(run_trial, study=spec), {"cpu": study.cpus_per_trial})
    callbacks: list[Callback] = [Progress(study)] if progress else []
    if resume:
        if not tune.Tuner.can_restore(str(directory)):
            raise ValueError(f"resume={str(directory)!r} is not valid; Ray Tune finds no experiment to restore there")
        tuner = tune.Tuner.restore(str(directory), trainable, resume_unfinished=True, resume_errored=False)
    else:
        study.save()
        search, scheduler, param_space = make_searcher(study.searcher, study.space, study.seed)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric="objective",
                mode="max",
                search_alg=search,
                scheduler=scheduler,
                num_samples=study.max_trials or -1,
                time_budget_s=study.budget_s or None,
                # A searcher draws no more trials than can run at once (random search and ASHA
                # draw ahead; trials never started are left out of the table).
                max_concurrent_trials=None
                if isinstance(search, BasicVariantGenerator)
                else max(int(ray.cluster_resources().get("CPU", 1) // study.cpus_per_trial), 1),
            ),
            run_config=tune.RunConfig(
                name=study.name,
                storage_path=str(directory.parent),
                verbose=verbose,
                callbacks=callbacks,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            ),
        )
    grid = tuner.fit()
    rows = trial_rows(study, grid)
    write_table(rows, directory / TRIALS_FILE)
    return rows


class Progress(Callback):
    """A progress bar of finished trials, with the best score and the time since the study began."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.bar: Any = None
        self.best = -math.inf

    def setup(
        self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None, **info: Any
    ) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.study.max_trials or None,
            unit="trial",
            dynamic_ncols=True,
            desc=f"{self.study.name} ({self.study.searcher})",
        )

    def _finished(self, trial: Any, failed: bool) -> None:
        score = (trial.last_result or {}).get("objective", -math.inf)
        if not failed and isinstance(score, (int, float)) and score > self.best:
            self.best = float(score)
        if self.bar is not None:
            self.bar.set_postfix({"best": f"{self.best:.4g}", "elapsed": f"{time.time() - self.study.started:.0f}s"})
            self.bar.update(1)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trial, failed=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.bar is not None:
            self.bar.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"study": self.study, "bar": None, "best": self.best}


def trial_rows(study: Study, grid: Any) -> list[TrialRow]:
    """The trials of a finished ``tuner.fit()``, in the order they finished."""
    from hmarl.tune.trial import PARENT_KEY, trial_values

    rows = []
    for result in grid:
        metrics = result.metrics or {}
        config = result.config or {}
        if result.error is None and "objective" not in metrics:
            continue  # drawn but never started before the budget ran out
        trial_id = metrics.get("trial_id") or Path(result.path).name.split("_")[-2]
        error = result.error
        score = metrics.get("objective", math.nan)
        rows.append(
            TrialRow(
                trial_id=str(trial_id),
                status="failed" if error is not None else "done",
                values=trial_values(study.space, config),
                score=float(score) if error is None and isinstance(score, (int, float)) else math.nan,
                evaluations=int(metrics.get("eval_count", 0)),
                train_seconds=float(metrics.get("train_seconds", math.nan)),
                finished_s=float(metrics.get("reported_at", math.nan)) - study.started,
                continues=str(config.get(PARENT_KEY, "") or ""),
                error=_first_line(error),
            )
        )
    return sorted(rows, key=lambda row: (math.isnan(row.finished_s), row.finished_s))


def _first_line(error: Any) -> str:
    if error is None:
        return ""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(error).__name__


def write_table(rows: Sequence[TrialRow], path: Path) -> None:
    names = sorted({name for row in rows for name in row.values})
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["trial_id", "status", *names, "score", "evaluations", "train_seconds", "finished_s", "continues", "error"]
        )
        for row in rows:
            writer.writerow(
                [
                    row.trial_id,
                    row.status,
                    *(row.values.get(name, "") for name in names),
                    row.score,
                    row.evaluations,
                    row.train_seconds,
                    row.finished_s,
                    row.continues,
                    row.error,
                ]
            )


def format_rows(rows: Sequence[TrialRow]) -> str:
    """The trials as a text table."""
    from hmarl.cli import format_table

    names = sorted({name for row in rows for name in row.values})
    table = [
        [
            row.trial_id,
            row.status,
            *(_short(row.values.get(name, "")) for name in names),
            row.score,
            row.evaluations,
            row.train_seconds,
            row.finished_s,
            row.continues or "-",
            row.error or "-",
        ]
        for row in rows
    ]
    columns = ["trial", "status", *names, "score", "evals", "train_s", "finished_s", "continues", "error"]
    return format_table(columns, table)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def best_so_far(rows: Sequence[TrialRow]) -> list[tuple[float, float]]:
    """(seconds since the study started, best score of the trials finished by then), at
    each improvement."""
    points: list[tuple[float, float]] = []
    best = -math.inf
    for row in rows:
        if row.status == "done" and math.isfinite(row.score) and math.isfinite(row.finished_s) and row.score > best:
            best = row.score
            points.append((row.finished_s, best))
    return points


def plot_best_so_far(curves: dict[str, Sequence[Sequence[tuple[float, float]]]], path: str, title: str = "") -> None:
    """PNG of best-so-far score against wall clock: one colour per searcher, one line per
    repetition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for k, (searcher, runs) in enumerate(curves.items()):
        colour = f"C{k}"
        for r, points in enumerate(runs):
            if not points:
                continue
            seconds, scores = zip(*points, strict=True)
            axes.step(seconds, scores, where="post", color=colour, alpha=0.8, label=searcher if r == 0 else None)
    axes.set_xlabel("wall clock (s)")
    axes.set_ylabel("best score so far")
    if title:
        axes.set_title(title)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
