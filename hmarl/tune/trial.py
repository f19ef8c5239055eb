"""One trial: a trainer run on the values a searcher chose, its curve reported as drawn.

Each greedy evaluation is reported to Ray Tune with the curve so far. A trial's run
lives in ``<study>/hmarl_runs/trial_<id>``; a trial that continues another's curve to a
longer training length resumes that run's checkpoint (a branch, see
:mod:`hmarl.training.runs`), and a trial restarted after a crash resumes its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmarl.tune.space import SearchSpace, option_args

#: Trainers with no learning curve to search over.
NOT_TUNABLE = {"collect": "it collects datasets and draws no learning curve"}
#: The config key that names the trial whose run a trial continues.
PARENT_KEY = "continue_trial"
#: Trainer options every trial sets itself.
OWNED_OPTIONS = ("run_name", "checkpoint_dir", "log_dir", "resume", "progress")


@dataclass(frozen=True)
class TrainerRef:
    """A trainer: a name of ``hmarl train`` or a path to a script with ``Config`` and ``main(argv)``."""

    name: str

    def parts(self) -> tuple[type, Callable[[Sequence[str]], Any], list[str]]:
        """Its config class, its ``main`` and the arguments that come before the options."""
        from hmarl.cli import TRAINERS

        if self.name in NOT_TUNABLE:
            raise ValueError(f"algorithm={self.name!r} cannot be tuned: {NOT_TUNABLE[self.name]}")
        if self.name == "sac_n":
            module = importlib.import_module("hmarl.trainers.sac_n")
            return module.OnlineConfig, module.main, ["online"]
        if self.name in TRAINERS:
            module = TRAINERS[self.name].load()
            return getattr(module, TRAINERS[self.name].config), module.main, []
        path = Path(self.name)
        if path.suffix == ".py" and path.is_file():
            spec = importlib.util.spec_from_file_location(f"hmarl_tune_trainer_{path.stem}", path.resolve())
            if spec is None or spec.loader is None:
                raise ValueError(f"trainer={self.name!r} could not be loaded as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            if not hasattr(module, "Config") or not hasattr(module, "main"):
                raise ValueError(f"algorithm={self.name!r} is not valid; the script must define Config and main(argv)")
            return module.Config, module.main, []
        valid = sorted(set(TRAINERS) - set(NOT_TUNABLE))
        raise ValueError(f"algorithm={self.name!r} is not valid; choose one of {valid} or give a trainer script (.py)")


def trial_values(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer options a trial's config sets: its params and its training length."""
    names = [r.name for r in space.params] + ([space.length.name] if space.length else [])
    return {name: config[name] for name in names if name in config}


def run_trial(config: dict[str, Any], study: Mapping[str, Any]) -> None:
    """The Ray Tune trainable: train, reporting each evaluation with the curve so far."""
    import ray
    import torch
    from ray import tune

    from hmarl.training import evaluation_listener, open_checkpoint

    torch.set_num_threads(max(int(study.get("cpus_per_trial", 1)), 1))
    space = SearchSpace.from_dict(study["space"])
    _config_cls, main, prefix = TrainerRef(study["algorithm"]).parts()
    runs = Path(study["runs_dir"])
    trial_id = tune.get_context().get_trial_id()
    run_name = f"trial_{trial_id}"
    values = trial_values(space, config)
    argv = [
        *prefix,
        *space.options,
        *option_args(values),
        "--run-name",
        run_name,
        "--checkpoint-dir",
        str(runs),
        "--log-dir",
        str(runs / "logs"),
        "--no-progress",
        "--checkpoint-replay",
    ]
    own = runs / run_name
    if _has_checkpoint(own, open_checkpoint):
        argv += ["--resume", str(own)]
    elif config.get(PARENT_KEY):
        argv += ["--resume", str(runs / f"trial_{config[PARENT_KEY]}")]
    metric = study["metric"]
    node = ray.get_runtime_context().get_node_id()
    reported = [0]

    def report(state: Any) -> None:
        curve = [float(metrics.get(metric, float("nan"))) for _, metrics in state.evaluations]
        tune.report(
            {
                "objective": curve[-1],
                "eval_count": len(curve),
                "env_steps": state.global_step,
                "train_seconds": state.wall_seconds,
                "curve": curve,
                "reported_at": time.time(),
                "node": node,
            }
        )
        reported[0] += 1

    with evaluation_listener(report):
        result = main(argv)
    if not reported[0]:
        # Restarted after its run had finished: the curve is the checkpoint's.
        curve = [float(metrics.get(metric, float("nan"))) for _, metrics in result.evaluations]
        if not curve:
            raise RuntimeError(f"trial {trial_id}: the run made no evaluation; set eval_every > 0")
        tune.report(
            {
                "objective": curve[-1],
                "eval_count": len(curve),
                "env_steps": result.env_steps,
                "train_seconds": result.wall_seconds,
                "curve": curve,
                "reported_at": time.time(),
                "node": node,
            }
        )


def _has_checkpoint(directory: Path, open_checkpoint: Callable[[str], Any]) -> bool:
    if not directory.is_dir() or not any(directory.glob("update_*.pt")):
        return False
    try:
        open_checkpoint(str(directory))
    except Exception:  # a damaged or partial checkpoint: the trial starts over
        return False
    return True
