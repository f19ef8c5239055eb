"""Selection stages: which drawn rows go through the backward pass.

The engine's selection stage (:class:`hmarl.core.engine.Selection`) scores candidate
rows without gradients and backpropagates only the rows a selection keeps. The rules
here are Selective-Backprop and its kin (Jiang et al. 2019, "Accelerating Deep Learning
by Focusing on the Biggest Losers"):

``sb``
    The paper's rule. A row whose loss ``L`` stands at percentile ``q`` among the last
    ``R`` losses seen (``q = #{h < L} / len(window)``, the candidates' own losses
    entering the window before they are ranked) is kept with probability
    ``max(floor, q ** beta)``, by an independent draw. The engine gathers kept rows
    until a full backward batch is ready. On a stationary loss stream the kept fraction
    is ``E[U ** beta] = 1 / (beta + 1)``: a quarter at the paper's ``beta = 3``.
``stale-sb``
    ``sb`` that reuses a row's stored score instead of scoring it again, for
    ``staleness`` updates: a score computed at update ``u`` stands in at updates ``u``
    to ``u + staleness - 1`` and the row is scored anew from update ``u + staleness``
    on. In replay the score belongs to the storage slot, and a slot written over since
    it was scored is scored anew.
``adapt-sb``
    The keep probability is a curve over the loss percentile, a quadratic through three
    control points at percentiles 0, 0.5 and 1 (the reference code's spline), and the
    control points adapt within the run: see :class:`AdaptiveSelectiveBackprop`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hmarl.core.config import check_choice, option
from hmarl.core.replay import Sample

SELECTIONS = ("none", "sb", "stale-sb", "adapt-sb")

#: AdaptSB's arms: control points (keep probability at loss percentiles 0, 0.5 and 1).
#: "all" is plain training; "sb" is close to the paper's q**3 (0.125 at the median);
#: "linear" is q**1; "middle" keeps the middle and drops both tails, the hardest rows
#: being where mislabelled examples collect.
ADAPT_CURVES: dict[str, tuple[float, float, float]] = {
    "all": (1.0, 1.0, 1.0),
    "sb": (0.0, 0.125, 1.0),
    "linear": (0.0, 0.5, 1.0),
    "middle": (0.1, 1.0, 0.1),
}


@dataclass
class SelectionConfig:
    """Which drawn rows are backpropagated; every off-policy learner's config includes it."""

    selection: str = option(
        "none",
        "rows that go through the backward pass: none (every drawn row), sb (Selective-Backprop), stale-sb "
        "(SB reusing stored scores), adapt-sb (SB whose priority curve adapts during the run)",
        choices=SELECTIONS,
    )
    selection_beta: float = option(3.0, "sb, stale-sb: keep probability percentile ** beta (the paper's prob_pow)")
    selection_floor: float = option(0.0, "least keep probability of any row (the paper's sampling_min)")
    selection_window: int = option(1024, "losses in the percentile window R")
    selection_staleness: int = option(3, "stale-sb: updates for which a row's stored score is reused")
    adapt_period: int = option(20, "adapt-sb: updates each priority curve runs before its reward is counted")
    adapt_explore: float = option(0.1, "adapt-sb: probability of trying a curve at random instead of the best")
    adapt_step: float = option(0.2, "adapt-sb: weight of the newest reward in a curve's running mean")


def check_selection(config: SelectionConfig) -> None:
    """Raise a ValueError naming the first option of ``config`` that is out of range."""
    check_choice("selection", config.selection, SELECTIONS)
    if config.selection_beta < 0:
        raise ValueError(f"selection_beta must be >= 0, got {config.selection_beta}")
    if not 0.0 <= config.selection_floor <= 1.0:
        raise ValueError(f"selection_floor must be in [0, 1], got {config.selection_floor}")
    if config.selection_window < 1:
        raise ValueError(f"selection_window must be >= 1, got {config.selection_window}")
    if config.selection_staleness < 1:
        raise ValueError(f"selection_staleness must be >= 1, got {config.selection_staleness}")
    if config.adapt_period < 1:
        raise ValueError(f"adapt_period must be >= 1, got {config.adapt_period}")
    if not 0.0 <= config.adapt_explore <= 1.0:
        raise ValueError(f"adapt_explore must be in [0, 1], got {config.adapt_explore}")
    if not 0.0 < config.adapt_step <= 1.0:
        raise ValueError(f"adapt_step must be in (0, 1], got {config.adapt_step}")


class LossWindow:
    """The last ``size`` scores, as a ring on the device, and percentiles within it."""

    def __init__(self, size: int, device: torch.device) -> None:
        self.values = torch.zeros(size, device=device)
        self.position = 0
        self.filled = 0

    def add(self, scores: torch.Tensor) -> None:
        size = len(self.values)
        scores = scores.detach().float().flatten()[-size:]
        slots = (self.position + torch.arange(len(scores), device=self.values.device)) % size
        self.values[slots] = scores.to(self.values.device)
        self.position = (self.position + len(scores)) % size
        self.filled = min(self.filled + len(scores), size)

    def percentiles(self, scores: torch.Tensor) -> torch.Tensor:
        """For each score, the fraction of the window strictly below it."""
        window = self.values[: self.filled].sort().values
        below = torch.searchsorted(window, scores.detach().float().contiguous().to(window.device), side="left")
        return below.float() / max(self.filled, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"values": self.values.clone(), "position": self.position, "filled": self.filled}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["values"].shape != self.values.shape:
            raise ValueError(
                f"the checkpoint's loss window holds {len(state['values'])} losses, this selection "
                f"{len(self.values)}; was it written with another selection_window?"
            )
        self.values.copy_(state["values"])
        self.position, self.filled = int(state["position"]), int(state["filled"])


class SelectiveBackprop:
    """The paper's rule (see the module's docstring): keep each candidate with
    probability ``max(floor, percentile ** beta)`` among the last ``window`` losses.

    The engine draws ``batch_size`` candidates per round, as the paper scores forward
    batches of the backward batch's size, and rounds go on until a batch is kept.
    """

    def __init__(
        self,
        beta: float = 3.0,
        floor: float = 0.0,
        window: int = 1024,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if beta < 0:
            raise ValueError(f"selection_beta must be >= 0, got {beta}")
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"selection_floor must be in [0, 1], got {floor}")
        if window < 1:
            raise ValueError(f"selection_window must be >= 1, got {window}")
        self.device = torch.device(device)
        self.beta = beta
        self.floor = floor
        self.window = LossWindow(window, self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.update = 0

    def begin_update(self, update: int) -> None:
        """Called by the engine before the candidates of each update are drawn."""
        self.update = update

    def candidates(self, batch_size: int) -> int:
        return batch_size

    def curve(self, percentiles: torch.Tensor) -> torch.Tensor:
        return percentiles.pow(self.beta)

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Each score's keep probability; the scores enter the window first."""
        self.window.add(scores)
        return self.curve(self.window.percentiles(scores)).clamp(min=self.floor, max=1.0)

    def choose(self, scores: torch.Tensor, sample: Sample) -> torch.Tensor:
        probabilities = self.probabilities(scores)
        draws = torch.rand(probabilities.shape, generator=self.generator, device=self.device)
        return (draws < probabilities).nonzero().flatten().to(scores.device)

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window.state_dict(), "generator": self.generator.get_state(), "update": self.update}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.window.load_state_dict(state["window"])
        self.generator.set_state(state["generator"])
        self.update = int(state["update"])


class StaleSelectiveBackprop(SelectiveBackprop):
    """``sb`` reusing each slot's stored score for ``staleness`` updates (StaleSB).

    The engine hands :meth:`score` its scorer; only the rows whose stored score is
    absent, too old, or belongs to a row since written over are scored (a source with
    ``written_at(index)``, the replay, says when each slot was written).
    The score table grows with the largest slot seen.
    """

    def __init__(self, staleness: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if staleness < 1:
            raise ValueError(f"selection_staleness must be >= 1, got {staleness}")
        self.staleness = staleness
        self.scores = torch.zeros(0, device=self.device)
        self.scored_at = torch.zeros(0, dtype=torch.long, device=self.device)
        self.written = torch.zeros(0, dtype=torch.long, device=self.device)

    def _grow(self, index: torch.Tensor) -> None:
        needed = int(index.max()) + 1 if len(index) else 0
        extra = needed - len(self.scores)
        if extra > 0:
            self.scores = torch.cat([self.scores, self.scores.new_zeros(extra)])
            # Never scored: older than any staleness.
            self.scored_at = torch.cat([self.scored_at, self.scored_at.new_full((extra,), -(2**62))])
            self.written = torch.cat([self.written, self.written.new_full((extra,), -1)])

    def _written_at(self, sample: Sample) -> torch.Tensor:
        written_at = getattr(sample.source, "written_at", None)
        if written_at is None:
            return torch.zeros(len(sample), dtype=torch.long, device=self.device)
        return written_at(sample.index).to(self.device)

    def _fresh(self, sample: Sample) -> torch.Tensor:
        index = sample.index.to(self.device)
        self._grow(index)
        recent = self.update - self.scored_at[index] < self.staleness
        return recent & (self.written[index] == self._written_at(sample))

    def score(self, sample: Sample, scorer: Callable[[Sample], torch.Tensor]) -> torch.Tensor:
        """The rows' scores: stored ones where they stand, ``scorer``'s for the rest
        (which are stored, stamped with this update and the slot's write)."""
        index = sample.index.to(self.device)
        renew = (~self._fresh(sample)).nonzero().flatten()
        if len(renew):
            self.scores[index[renew]] = scorer(sample.take(renew.to(sample.index.device))).float().to(self.device)
            self.scored_at[index[renew]] = self.update
            self.written[index[renew]] = self._written_at(sample)[renew]
        return self.scores[index].to(sample.index.device)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "scores": self.scores, "scored_at": self.scored_at, "written": self.written}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.scores = state["scores"].to(self.device).clone()
        self.scored_at = state["scored_at"].to(self.device).clone()
        self.written = state["written"].to(self.device).clone()


def spline(points: Sequence[float], x: torch.Tensor) -> torch.Tensor:
    """The quadratic through ``(0, y0), (0.5, y1), (1, y2)`` at ``x`` (the reference
    code's ``interp1d([0, 0.5, 1], points, kind="quadratic")``)."""
    y0, y1, y2 = points
    return 2 * y0 * (x - 0.5) * (x - 1) - 4 * y1 * x * (x - 1) + 2 * y2 * x * (x - 0.5)


class AdaptiveSelectiveBackprop(SelectiveBackprop):
    """AdaptSB: the keep probability is ``max(floor, spline(points, percentile))`` and
    the control points are chosen online by a bandit over :data:`ADAPT_CURVES`.

    **The rule.** Training runs in periods of ``period`` updates; each period uses one
    curve. At every update the median score of its first round of candidates is noted:
    they are drawn before any choice, so the median measures the model, not the curve
    (the median, so that a few rows that never fit, mislabelled ones, do not decide it).
    A period's reward is the fall of that median from the period's first update to the
    next period's first, per row backpropagated in between: the loss decrease each
    backward row bought (with the backward batch fixed, the fall per update over the
    batch size; the rows scored to fill a batch are not charged). Each curve keeps a
    running mean of its rewards (weight ``step`` on the newest, so the choice follows the
    phase of training). The curves are tried once each in order; then each period takes
    the curve with the highest mean, or with probability ``explore`` one at random. So a
    curve whose periods are followed by larger falls of the median per backward row is
    chosen more often (measured choices: ``docs/results/selection.md``).
    """

    def __init__(
        self,
        curves: Mapping[str, Sequence[float]] | None = None,
        period: int = 20,
        explore: float = 0.1,
        step: float = 0.2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if period < 1:
            raise ValueError(f"adapt_period must be >= 1, got {period}")
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"adapt_explore must be in [0, 1], got {explore}")
        if not 0.0 < step <= 1.0:
            raise ValueError(f"adapt_step must be in (0, 1], got {step}")
        self.curves = dict(ADAPT_CURVES if curves is None else curves)
        if not self.curves or any(len(points) != 3 for points in self.curves.values()):
            raise ValueError("curves must name at least one curve of three control points")
        self.names = list(self.curves)
        self.period, self.explore, self.step = period, explore, step
        self.arm = 0
        self.means = [0.0] * len(self.names)
        self.pulls = [0] * len(self.names)
        self.period_start: tuple[int, float] | None = None
        self.batch_size = 1
        self.scored_update = -1

    @property
    def points(self) -> tuple[float, ...]:
        return tuple(self.curves[self.names[self.arm]])

    def candidates(self, batch_size: int) -> int:
        self.batch_size = batch_size
        return batch_size

    def curve(self, percentiles: torch.Tensor) -> torch.Tensor:
        return spline(self.points, percentiles)

    def _next_arm(self) -> int:
        untried = [arm for arm, pulls in enumerate(self.pulls) if pulls == 0]
        if untried:
            return untried[0]
        if float(torch.rand((), generator=self.generator, device=self.device)) < self.explore:
            return int(torch.randint(len(self.names), (), generator=self.generator, device=self.device))
        return max(range(len(self.names)), key=lambda arm: self.means[arm])

    def observe(self, median: float) -> None:
        """The median fresh score at the start of update ``self.update``; ends a period when due."""
        if self.period_start is None:
            self.period_start = (self.update, median)
            return
        start_update, start_median = self.period_start
        updates = self.update - start_update
        if updates < self.period:
            return
        reward = (start_median - median) / (updates * self.batch_size)
        arm = self.arm
        self.means[arm] = reward if self.pulls[arm] == 0 else self.means[arm] + self.step * (reward - self.means[arm])
        self.pulls[arm] += 1
        self.arm = self._next_arm()
        self.period_start = (self.update, median)

    def choose(self, scores: torch.Tensor, sample: Sample) -> torch.Tensor:
        if self.scored_update != self.update:
            self.scored_update = self.update
            self.observe(float(scores.float().median()))
        return super().choose(scores, sample)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "arm": self.arm,
            "means": list(self.means),
            "pulls": list(self.pulls),
            "period_start": self.period_start,
            "batch_size": self.batch_size,
            "scored_update": self.scored_update,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.arm = int(state["arm"])
        self.means, self.pulls = list(state["means"]), list(state["pulls"])
        self.period_start = None if state["period_start"] is None else tuple(state["period_start"])
        self.batch_size, self.scored_update = int(state["batch_size"]), int(state["scored_update"])


def make_selection(config: SelectionConfig, device: torch.device | str = "cpu", seed: int = 0) -> SelectiveBackprop | None:
    """The selection ``config.selection`` names (None for ``none``)."""
    check_selection(config)
    if config.selection == "none":
        return None
    common: dict[str, Any] = {
        "beta": config.selection_beta,
        "floor": config.selection_floor,
        "window": config.selection_window,
        "device": device,
        "seed": seed,
    }
    if config.selection == "sb":
        return SelectiveBackprop(**common)
    if config.selection == "stale-sb":
        return StaleSelectiveBackprop(staleness=config.selection_staleness, **common)
    return AdaptiveSelectiveBackprop(
        period=config.adapt_period, explore=config.adapt_explore, step=config.adapt_step, **common
    )
