"""Optimisers the update engine can own: Adam, AdamW and AdaMod.

AdaMod (Ding et al., 2019) is not in ``torch.optim``; the maintained packages that
ship it either change its default betas or are no longer released, so it is written
here with ``torch._foreach_*`` kernels (one kernel per operation for all parameters).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

OPTIMIZERS = ("adam", "adamw", "adamod")


class AdaMod(torch.optim.Optimizer):
    """Adam whose per-element step sizes are capped by their own exponential average.

    With ``t`` the step count, for every element::

        m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        eta = lr sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v) + eps)
        s = b3 s + (1 - b3) eta          (s starts at 0)
        theta = theta - min(eta, s) m

    Weight decay is decoupled: ``theta = theta - lr wd theta`` before the step.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        for name, beta in (("betas[0]", betas[0]), ("betas[1]", betas[1]), ("beta3", beta3)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta}")
        if eps < 0.0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = {"lr": lr, "betas": betas, "beta3": beta3, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            states = [self.state[p] for p in params]
            for param, state in zip(params, states, strict=True):
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                    state["exp_avg_lr"] = torch.zeros_like(param)
            exp_avgs = [s["exp_avg"] for s in states]
            exp_avg_sqs = [s["exp_avg_sq"] for s in states]
            exp_avg_lrs = [s["exp_avg_lr"] for s in states]
            for state in states:
                state["step"] += 1
            # Parameters of one group are created together and always step together.
            step = float(states[0]["step"])
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            beta3 = group["beta3"]

            if weight_decay != 0.0:
                torch._foreach_mul_(params, 1.0 - lr * weight_decay)
            torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)

            step_size = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
            step_sizes = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_add_(step_sizes, eps)
            torch._foreach_reciprocal_(step_sizes)
            torch._foreach_mul_(step_sizes, step_size)
            torch._foreach_lerp_(exp_avg_lrs, step_sizes, 1.0 - beta3)
            torch._foreach_minimum_(step_sizes, exp_avg_lrs)
            torch._foreach_mul_(step_sizes, exp_avgs)
            torch._foreach_sub_(params, step_sizes)
        return loss


def make_optimizer(
    name: str,
    params: Iterable[torch.Tensor],
    lr: float | torch.Tensor,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    adamod_beta3: float = 0.999,
) -> torch.optim.Optimizer:
    """Build the optimiser called ``name`` (one of :data:`OPTIMIZERS`).

    ``lr`` may be a 0-dim tensor that a schedule writes into (a compiled or captured
    update reads it without being compiled again). Adam and AdamW then keep their step
    counts on the parameters' device where PyTorch allows it (``capturable``, on CUDA),
    so that no step needs the host; on the CPU they run per tensor, since PyTorch's
    multi-tensor kernels take a tensor learning rate only in capturable mode.
    """
    params = list(params)
    if name in ("adam", "adamw"):
        kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        capturable = torch.is_tensor(lr) and lr.device.type == "cuda"
        foreach = capturable or not torch.is_tensor(lr)
        return kind(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, capturable=capturable)
    if name == "adamod":
        return AdaMod(params, lr=lr, betas=betas, beta3=adamod_beta3, eps=eps, weight_decay=weight_decay)
    raise ValueError(f"optimizer={name!r} is not known; choose one of {list(OPTIMIZERS)}")
