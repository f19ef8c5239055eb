"""The divergence guard: learned values far beyond what the rewards allow, or a loss that
keeps growing, are reported while the run goes on (or stop it, on request).

A discounted return is bounded by ``r_max / (1 - gamma)``, with ``r_max`` the largest
reward per step summed over agents seen so far (at least 1, the intrinsic rewards'
scale). Values are the update metrics whose names end in ``q_mean``; losses are those
whose names end in ``loss`` and that stay positive (an alias of another, such as a
hierarchical learner's ``loss``, is skipped).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Values this many times the bound are divergence, not estimation error.
VALUE_BOUND_FACTOR = 10.0
#: The loss diverges when it grew at this many logged points in a row ...
LOSS_GROWTH_POINTS = 5
#: ... and stands this many times above its smallest logged value.
LOSS_GROWTH_FACTOR = 100.0


class DivergenceError(RuntimeError):
    """A run stopped by ``--stop-on-divergence``."""


class DivergenceGuard:
    def __init__(self, gamma: float) -> None:
        self.horizon = 1.0 / max(1.0 - gamma, 1e-3)
        self.reward_scale = 1.0
        self.losses: dict[str, list[float]] = {}
        self.smallest_loss: dict[str, float] = {}
        self.reported: set[str] = set()
        self.signed: set[str] = set()

    @property
    def value_bound(self) -> float:
        return self.reward_scale * self.horizon

    def observe_rewards(self, rewards: np.ndarray) -> None:
        """``rewards`` (B, N) of one vector step."""
        self.reward_scale = max(self.reward_scale, float(np.abs(rewards.sum(-1)).max(initial=0.0)))

    def check(self, metrics: Mapping[str, Any], updates: int) -> str | None:
        """A message if ``metrics`` (logged at ``updates``) show divergence not reported yet."""
        for name, value in metrics.items():
            if not name.endswith("q_mean"):
                continue
            number = float(value)
            if abs(number) > VALUE_BOUND_FACTOR * self.value_bound and name not in self.reported:
                self.reported.add(name)
                return (
                    f"{name}={number:.4g} at update {updates} is beyond {VALUE_BOUND_FACTOR:g}x the bound "
                    f"{self.value_bound:.4g} that the rewards allow (|reward| <= {self.reward_scale:.4g} per step, "
                    f"horizon {self.horizon:.4g}); the learning rate may be too high"
                )
        losses = {name: float(value) for name, value in metrics.items() if name.endswith("loss")}
        for name, loss in losses.items():
            alias = any(other != name and value == loss for other, value in losses.items())
            if loss < 0:
                self.signed.add(name)
            # A loss that can be negative (an actor's) has no scale to grow from.
            if (name == "loss" and alias) or name in self.reported or name in self.signed or loss == 0:
                continue
            smallest = self.smallest_loss[name] = min(self.smallest_loss.get(name, math.inf), loss)
            history = self.losses[name] = [*self.losses.get(name, []), loss][-(LOSS_GROWTH_POINTS + 1) :]
            growing = len(history) > LOSS_GROWTH_POINTS and all(b > a for a, b in itertools.pairwise(history))
            if growing and loss > LOSS_GROWTH_FACTOR * smallest:
                self.reported.add(name)
                return (
                    f"{name}={loss:.4g} at update {updates} grew at each of the last {LOSS_GROWTH_POINTS} logged "
                    f"points to {loss / smallest:.3g}x its smallest value; the learning rate may be too high"
                )
        return None
