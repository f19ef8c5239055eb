"""What ``--resume`` does with the other options given beside it.

- Alone (or with options that do not touch the learning, such as ``--no-progress``),
  the run continues exactly, in its own directory, under its own name.
- With changed budget, learning rates, evaluation or logging options, it branches: a
  new run (``<name>_branch<k>`` unless ``--run-name`` names it) starts from the
  checkpoint, records its parent, and never writes into the source run.
- Any other change (environment, network shapes, replay sizes, seed, the optimiser's
  learning-rate schedule, whose state the checkpoint holds, ...) is refused, naming the
  options: the checkpoint's networks, optimisers and replay were built for the old ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hmarl.training.checkpoints import open_checkpoint
from hmarl.training.config import CommonRunConfig, _same, config_from_dict, flat_options, given_options, with_options

ConfigT = TypeVar("ConfigT", bound=CommonRunConfig)

#: Options that change how a run is watched or kept, not what it learns.
FREE_ON_RESUME = frozenset(
    {
        "resume",
        "progress",
        "device",
        "torch_threads",
        "keep_checkpoints",
        "checkpoint_minutes",
        "checkpoint_replay",
        "stop_on_divergence",
        "gif",
    }
)
#: Options a branch may change: budget, learning rates and the schedules of learning and
#: exploration that agents compute from the configuration, evaluation, logging.
BRANCHABLE = frozenset(
    {
        "run_name",
        "total_steps",
        "total_updates",
        "max_train_seconds",
        "learning_starts",
        "train_every",
        "updates_per_round",
        "lr_scaling",
        "autowu_check_every",
        "max_grad_norm",
        "weight_decay",
        "target_update_period",
        "tau",
        "exploration_fraction",
        "epsilon_start",
        "epsilon_end",
        "high_exploration_steps",
        "low_exploration_steps",
        "eval_every",
        "eval_episodes",
        "target_metric",
        "target_value",
        "target_max_length",
        "stop_at_target",
        "log_dir",
        "log_every",
        "checkpoint_dir",
        "checkpoint_every",
        "compile",
        "cuda_graphs",
    }
)


def _branchable(name: str) -> bool:
    return name in BRANCHABLE or name == "lr" or name.endswith("_lr")


@dataclass(frozen=True)
class ResumePlan:
    """The configuration to run, the checkpoint it starts from, and the parent run if
    it branches (``None``: it continues its own run)."""

    config: Any
    checkpoint: dict[str, Any]
    source: Path
    parent: dict[str, Any] | None


def plan_resume(config: ConfigT) -> ResumePlan:
    """Read ``config.resume`` and decide between continuing, branching and refusing."""
    source, checkpoint = open_checkpoint(config.resume)
    stored_values = checkpoint["config"]
    known = {field.name for field in dataclasses.fields(config)} | set(flat_options(config))
    unknown = sorted(set(stored_values) - known)
    if unknown:
        raise ValueError(
            f"checkpoint {str(source)!r} was written by another trainer: its configuration has {unknown}, "
            f"which {type(config).__name__} lacks"
        )
    stored = config_from_dict(type(config), stored_values)
    given = given_options(config)
    ours, theirs = flat_options(config), flat_options(stored)
    changed = sorted(name for name in given if name not in FREE_ON_RESUME and not _same(ours[name], theirs[name]))
    refused = [name for name in changed if not _branchable(name)]
    if refused:
        details = ", ".join(f"{name} ({theirs[name]!r} in the run, {ours[name]!r} given)" for name in refused)
        raise ValueError(
            f"cannot change on --resume: {details}. The checkpoint's networks, replay and environment were built "
            f"for the run's values. A resume may change the budget, learning rates, evaluation and logging: "
            f"{sorted(BRANCHABLE | {'lr', '*_lr'})}"
        )
    free = {name: ours[name] for name in given if name in FREE_ON_RESUME and name in ours}
    run = with_options(stored, {**free, **{name: ours[name] for name in changed}})
    if not changed:
        return ResumePlan(run, checkpoint, source, None)
    if "run_name" not in given:
        run = dataclasses.replace(run, run_name=_branch_name(stored.run_name, Path(run.checkpoint_dir)))
    elif run.run_name == stored.run_name and Path(run.checkpoint_dir) == Path(stored.checkpoint_dir):
        raise ValueError(
            f"run_name={run.run_name!r}: a resume with changed options starts a new run and never writes into "
            f"the source run; give another --run-name (or none, for {stored.run_name}_branch<k>)"
        )
    parent = {
        "run_name": stored.run_name,
        "checkpoint": str(source.resolve()),
        "updates": int(checkpoint["loop"]["updates"]),
        "changed": {name: [theirs[name], ours[name]] for name in changed},
    }
    return ResumePlan(run, checkpoint, source, parent)


def _branch_name(name: str, checkpoint_dir: Path) -> str:
    k = 1
    while (checkpoint_dir / f"{name}_branch{k}").exists():
        k += 1
    return f"{name}_branch{k}"
