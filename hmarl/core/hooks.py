"""Hooks that ship with the core; each is also an example of the hook contract
(:mod:`hmarl.core.engine`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hmarl.core.engine import UpdateContext


class ZeroGradientFraction:
    """Measures, after every backward pass, the fraction of the trained parameters'
    gradient entries that are exactly zero (dead ReLUs, masked weights), averaged over
    the updates since it was last read. The sum stays on the device: reading
    :attr:`fraction` is the only synchronisation.

        hook = engine.add_hook(ZeroGradientFraction())
        ...
        logger.scalars("train", {"zero_gradients": hook.fraction}, step)
    """

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.updates = 0

    def after_backward(self, ctx: UpdateContext) -> None:
        grads = [p.grad for p in ctx.engine.parameters if p.grad is not None]
        zeros = torch.stack([(g == 0).sum() for g in grads]).sum() / sum(g.numel() for g in grads)
        self.total = zeros if self.total is None else self.total + zeros
        self.updates += 1

    @property
    def fraction(self) -> float:
        """The mean fraction since the last read (nan if no update ran); resets the mean."""
        value = float("nan") if self.total is None else float(self.total) / self.updates
        self.total, self.updates = None, 0
        return value

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total, "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.total, self.updates = state["total"], state["updates"]
