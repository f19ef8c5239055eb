"""Target networks: slowly moving copies that the bootstrap values are read from."""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

TARGET_UPDATES = ("hard", "polyak")


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def make_target(module: ModuleT) -> ModuleT:
    """A frozen copy of ``module`` (no gradients, evaluation mode unchanged)."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


@torch.no_grad()
def hard_update(target: nn.Module, online: nn.Module, when: torch.Tensor | None = None) -> None:
    """Copy every parameter and buffer of ``online`` into ``target`` (only where the 0-dim
    bool tensor ``when`` is true, if given: a decision left on the device)."""
    targets, onlines = _tensors(target), _tensors(online)
    if when is not None:
        onlines = [torch.where(when, new, old) for new, old in zip(onlines, targets, strict=True)]
    torch._foreach_copy_(targets, onlines)


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float | torch.Tensor) -> None:
    """``target = (1 - tau) target + tau online`` for all parameters in one kernel each.
    ``tau`` may be a 0-dim tensor on the device (zero leaves the targets as they are)."""
    targets: list[torch.Tensor] = list(target.parameters())
    onlines: list[torch.Tensor] = list(online.parameters())
    if torch.is_tensor(tau):
        steps = torch._foreach_sub(onlines, targets)
        torch._foreach_mul_(steps, tau)
        torch._foreach_add_(targets, steps)
    else:
        torch._foreach_lerp_(targets, onlines, tau)
    buffers = list(target.buffers())
    # _foreach kernels reject empty lists, and most networks have no buffers.
    if buffers:
        torch._foreach_copy_(buffers, list(online.buffers()))
