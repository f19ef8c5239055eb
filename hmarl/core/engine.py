"""The update engine: one optimiser step from a loss, as fast as the hardware allows.

An algorithm hands the engine its modules once and a loss function per update; the
engine owns everything around the loss: optimiser, learning-rate rule and schedule,
gradient clipping, bf16 autocast on CUDA, optional ``torch.compile``, target networks
and the per-update metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from hmarl.core.config import check_choice, option
from hmarl.core.optim import OPTIMIZERS, make_optimizer
from hmarl.core.schedules import LR_SCALINGS, SCHEDULES, make_schedule, scale_lr
from hmarl.core.targets import TARGET_UPDATES, hard_update, make_target, polyak_update

Batch = TypeVar("Batch")
LossFn = Callable[[Batch], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]


class NonFiniteLossError(RuntimeError):
    """The loss or gradient norm was NaN or infinite; no parameter was changed."""


@dataclass
class EngineConfig:
    """What the update engine needs to know; algorithm configs extend it."""

    optimizer: str = option("adam", "optimiser", choices=OPTIMIZERS)
    lr: float = option(3e-4, "learning rate at --base-batch-size (before --lr-scaling)")
    lr_scaling: str = option(
        "none", "scale lr with batch size: none, sqrt (LB-SAC) or linear", choices=LR_SCALINGS
    )
    batch_size: int = option(256, "transitions per update")
    base_batch_size: int = option(256, "batch size at which --lr was tuned")
    weight_decay: float = option(0.0, "weight decay (decoupled for adamw and adamod)")
    adam_eps: float = option(1e-8, "epsilon in the denominator of Adam-type optimisers")
    adamod_beta3: float = option(0.999, "AdaMod's averaging coefficient for step sizes")
    schedule: str = option("constant", "learning-rate schedule", choices=SCHEDULES)
    autowu_check_every: int = option(100, "updates between AutoWU minimum checks during warm-up")
    max_grad_norm: float = option(10.0, "clip the global gradient norm to this (0 disables)")
    bf16: bool = option(True, "bf16 autocast for the loss on CUDA (ignored on CPU)")
    compile: bool = option(False, "torch.compile the loss function")
    target_update: str = option(
        "hard", "target networks: hard copy every period, or polyak every update", choices=TARGET_UPDATES
    )
    target_update_period: int = option(500, "updates between hard target copies")
    tau: float = option(0.005, "Polyak coefficient for target updates")


class UpdateEngine:
    """Steps the parameters of ``modules`` with the gradients of a loss.

    ``targets`` names the modules that get a target network (``engine.targets[name]``),
    updated after every optimiser step as ``config.target_update`` says.
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        config: EngineConfig,
        total_updates: int,
        targets: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        check_choice("optimizer", config.optimizer, OPTIMIZERS)
        check_choice("schedule", config.schedule, SCHEDULES)
        check_choice("lr_scaling", config.lr_scaling, LR_SCALINGS)
        check_choice("target_update", config.target_update, TARGET_UPDATES)
        for name in targets:
            check_choice("targets", name, list(modules))
        if config.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
        if config.target_update_period < 1:
            raise ValueError(f"target_update_period must be >= 1, got {config.target_update_period}")
        if not 0.0 < config.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {config.tau}")
        self.config = config
        self.modules = nn.ModuleDict(modules)
        self.targets = nn.ModuleDict({name: make_target(modules[name]) for name in targets})
        self.parameters = [p for p in self.modules.parameters() if p.requires_grad]
        self.device = self.parameters[0].device
        lr = scale_lr(config.lr, config.batch_size, config.base_batch_size, config.lr_scaling)
        self.optimizer = make_optimizer(
            config.optimizer,
            self.parameters,
            lr=lr,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
            adamod_beta3=config.adamod_beta3,
        )
        self.schedule = make_schedule(
            config.schedule, lr, total_updates, autowu_check_every=config.autowu_check_every, seed=seed
        )
        self.max_grad_norm = config.max_grad_norm if config.max_grad_norm > 0 else float("inf")
        self.autocast = config.bf16 and self.device.type == "cuda"
        self.updates = 0
        self._compiled: dict[Callable[..., Any], Callable[..., Any]] = {}

    def _loss_function(self, loss_fn: LossFn) -> LossFn:
        if not self.config.compile:
            return loss_fn
        if loss_fn not in self._compiled:
            self._compiled[loss_fn] = torch.compile(loss_fn)
        return self._compiled[loss_fn]

    def update(self, loss_fn: LossFn, batch: Batch) -> dict[str, Any]:
        """One optimiser step on ``loss_fn(batch)``; returns the update's metrics.

        ``loss_fn`` returns the scalar loss and a dict of extra tensors to log. A
        non-finite loss or gradient raises :class:`NonFiniteLossError` before the
        optimiser step, so the parameters stay as they were.
        """
        start = time.perf_counter()
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss, extras = self._loss_function(loss_fn)(batch)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm, foreach=True)
        # One device synchronisation per update serves the finiteness check, the
        # schedule (AutoWU smooths the loss curve) and the metrics.
        loss_value, grad_norm_value = torch.stack([loss.detach().float(), grad_norm.float()]).tolist()
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm_value)):
            raise NonFiniteLossError(
                f"non-finite loss {loss_value} (gradient norm {grad_norm_value}) at update "
                f"{self.updates + 1}; the parameters were left as they were before it"
            )
        self.optimizer.step()
        lr = self.schedule.lr
        self.schedule.step(loss_value)
        self.updates += 1
        self._update_targets()
        elapsed = time.perf_counter() - start
        batch_size = self.config.batch_size
        return {
            "loss": loss_value,
            "grad_norm": grad_norm_value,
            "lr": lr,
            "samples_per_second": batch_size / elapsed if elapsed > 0 else float("inf"),
            **extras,
        }

    def _update_targets(self) -> None:
        for name, target in self.targets.items():
            if self.config.target_update == "polyak":
                polyak_update(target, self.modules[name], self.config.tau)
            elif self.updates % self.config.target_update_period == 0:
                hard_update(target, self.modules[name])

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": self.modules.state_dict(),
            "targets": self.targets.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.modules.load_state_dict(state["modules"])
        self.targets.load_state_dict(state["targets"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.updates = int(state["updates"])
