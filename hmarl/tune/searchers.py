"""The searchers of a study, on Ray Tune: BOIL, and as baselines random search, Optuna's
TPE and ASHA (random points, stopped early by Ray Tune's asynchronous successive halving)."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search import Searcher

from hmarl.tune.boil import Boil
from hmarl.tune.space import Range, SearchSpace
from hmarl.tune.trial import PARENT_KEY

SEARCHERS = ("boil", "random", "tpe", "asha")
#: ASHA halves (by 3) from a ninth of the longest run: rungs at 1/9, 1/3 and the whole run.
ASHA_REDUCTION = 3


def _domain(r: Range) -> Any:
    if r.integer:
        low, high = math.ceil(r.low), math.floor(r.high)
        return tune.lograndint(low, high + 1) if r.log else tune.randint(low, high + 1)
    return tune.loguniform(r.low, r.high) if r.log else tune.uniform(r.low, r.high)


def param_space(space: SearchSpace, with_length: bool) -> dict[str, Any]:
    """Ray Tune's sampling domains for random search and TPE (the length sampled as a
    number of evaluation periods when ``with_length``, else fixed at its top)."""
    domains = {r.name: _domain(r) for r in space.params}
    if space.length is not None:
        if with_length:
            low = math.ceil(space.length.low / space.eval_every)
            high = math.floor(space.length.high / space.eval_every)
            domains[space.length.name] = tune.qrandint(low * space.eval_every, high * space.eval_every, space.eval_every)
        else:
            domains[space.length.name] = int(space.length.high)
    return domains


class BoilSearcher(Searcher):
    """BOIL behind Ray Tune's searcher interface. The first 3 * dim trials are random
    points run to the longest length; then each suggestion fits the GP to the curves
    reported so far. A suggestion that continues an evaluated curve names that trial
    (``continue_trial``), whose checkpoint the new trial resumes."""

    def __init__(self, space: SearchSpace, metric: str = "objective", mode: str = "max", seed: int = 0) -> None:
        super().__init__(metric=metric, mode=mode)
        if mode != "max":
            raise ValueError(f"mode={mode!r} is not valid; BOIL maximises the curve's score (mode='max')")
        self.space = space
        t_min = space.length.low / space.length.high if space.length else 1.0
        self.boil = Boil(dim=len(space.params), t_min=t_min, max_length=space.max_curve_length, seed=seed)
        #: trial id -> (x, t, index of the curve it continues or None)
        self.pending: dict[str, tuple[np.ndarray, float, int | None]] = {}
        #: index of each real observation -> its trial id
        self.trial_of: dict[int, str] = {}
        self.failed: list[str] = []

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        started = len(self.boil.real()) + len(self.pending)
        parent: int | None = None
        if started < self.boil.initial_design:
            x, t = self.boil.random_point(), 1.0
        elif not self.boil.real():
            return None
        else:
            busy = {index for _, _, index in self.pending.values() if index is not None}
            running = [(x, t) for x, t, _ in self.pending.values()]
            x, t, parent = self.boil.suggest(exclude=busy, pending=running)
        config: dict[str, Any] = {r.name: r.value(u) for r, u in zip(self.space.params, x, strict=True)}
        if self.space.length is not None:
            steps = self.space.round_length(t * self.space.length.high)
            config[self.space.length.name] = steps
            t = steps / self.space.length.high
        if parent is not None:
            config[PARENT_KEY] = self.trial_of[parent]
        self.pending[trial_id] = (np.asarray(x, dtype=np.float64), float(t), parent)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        x, t, _ = self.pending.pop(trial_id, (None, 0.0, None))
        if x is None:
            return
        curve = (result or {}).get("curve")
        if error or not curve or not np.all(np.isfinite(curve)):
            self.failed.append(trial_id)
            return
        self.trial_of[len(self.boil.observations)] = trial_id
        self.boil.add(x, t, curve[: self.boil.max_length], float((result or {})["train_seconds"]))

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.get_state(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.set_state(pickle.load(file))

    def get_state(self) -> dict:
        return {
            "boil": self.boil.state(),
            "pending": self.pending,
            "trial_of": self.trial_of,
            "failed": self.failed,
        }

    def set_state(self, state: dict) -> None:
        self.boil.load(state["boil"])
        self.pending, self.trial_of, self.failed = state["pending"], state["trial_of"], state["failed"]


def make_searcher(name: str, space: SearchSpace, seed: int) -> tuple[Any, Any, dict[str, Any]]:
    """(search algorithm, scheduler, param space) of the searcher ``name``."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if name == "boil":
        return BoilSearcher(space, seed=seed), None, {}
    if name == "random":
        return BasicVariantGenerator(random_state=seed), None, param_space(space, with_length=True)
    if name == "tpe":
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(sampler=TPESampler(seed=seed)), None, param_space(space, with_length=True)
    if name == "asha":
        from ray.tune.schedulers import ASHAScheduler

        max_t = space.max_curve_length
        scheduler = ASHAScheduler(
            time_attr="eval_count",
            max_t=max_t,
            grace_period=max(1, max_t // ASHA_REDUCTION**2),
            reduction_factor=ASHA_REDUCTION,
        )
        return BasicVariantGenerator(random_state=seed), scheduler, param_space(space, with_length=False)
    raise ValueError(f"searcher={name!r} is not valid; choose one of {list(SEARCHERS)}")
