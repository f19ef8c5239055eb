"""The update engine: one optimiser step from a loss, as fast as the hardware allows.

An algorithm hands the engine its modules once and a loss function per update; the
engine owns everything around the loss: drawing the batch, optimiser, learning-rate rule
and schedule, gradient clipping, bf16 autocast on CUDA, optional ``torch.compile``,
target networks and the per-update metrics.

**Compiled updates.** With ``compile`` set (``default`` or ``max-autotune``), the gradient
step (loss, backward, clipping, finiteness check, optimiser step) is one
function compiled with ``torch.compile``, and with ``cuda_graphs`` on CUDA its graphs are replayed
from CUDA graphs. The engine then never waits for the device inside an update: the
learning rate is a tensor the schedule writes into (a new rate is not a new graph), the
metrics come back as device tensors, and the finiteness check accumulates on the device
(:meth:`UpdateEngine.check_finite` reads it; the training loop does every ``log_every``
updates). A non-finite update changes nothing: every later update is masked too until
the read raises :class:`NonFiniteLossError`. The eager path (``compile="none"``) checks
every update on the host, as one synchronisation.

**Per-row losses.** A loss function returns a :class:`RowLoss`, the loss of each row
(TD errors and the like), or an already reduced scalar. The engine reduces the rows with
the sampler's importance weights and hands each row's score back to where the batch was
drawn from (:meth:`hmarl.core.ReplayBuffer.feedback`), so a prioritised sampler learns
from every update without the algorithm knowing which sampler it has.

**The selection stage.** With a :class:`Selection` set, the engine draws candidate rows,
scores them with the loss function *without* gradients, and only the rows the selection
keeps go through the gradient pass (Selective-Backprop's shape: a cheap forward over
many rows, a backward over few). A selection that keeps scores from earlier updates
scores the candidates itself with the scorer the engine hands it (StaleSB scores only
the rows whose stored score is too old). An engine built from
a config that includes :class:`hmarl.core.SelectionConfig` gets the selection it names
(:mod:`hmarl.core.selection`), so every learner takes ``--selection``. Without one, the
stage costs nothing. ``engine.scored_rows`` counts the rows scored without gradients,
``engine.backward_rows`` the rows that went through a backward pass.

**Hooks** act inside an update at fixed points, in the order they were added. A hook is
any object with some of these methods (each receives the :class:`UpdateContext`):

=====================  ============================================================
``before_loss(ctx)``   the rows about to be read are ``ctx.batch`` (replaceable) and
                       ``ctx.sample`` (slots and weights, when drawn from replay)
``after_backward``     gradients are in the parameters' ``.grad``; ``ctx.loss`` and
                       ``ctx.rows`` hold the loss and its rows
``after_step(ctx)``    the optimiser stepped and the targets were updated
``state_dict()``       its state, saved in the engine's checkpoint
``load_state_dict``    restores it
=====================  ============================================================

A worked example, a hook that measures the fraction of exactly zero gradients, is
:class:`hmarl.core.hooks.ZeroGradientFraction`::

    class ZeroGradientFraction:
        def after_backward(self, ctx):
            grads = [p.grad for p in ctx.engine.parameters if p.grad is not None]
            zeros = torch.stack([(g == 0).sum() for g in grads]).sum() / sum(g.numel() for g in grads)
            self.total = zeros if self.total is None else self.total + zeros   # stays on the device
            self.updates += 1

        def state_dict(self): ...          # total and updates, so a resumed run goes on exactly
        def load_state_dict(self, state): ...

    hook = engine.add_hook(ZeroGradientFraction())

Every learner exposes its engines by name (``agent.engines()``), so a method that is a
hook (sparse training, for one) plugs into every learner without editing any of them.
"""

from __future__ import annotations

import logging
import math
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from hmarl.core.config import check_choice, option
from hmarl.core.optim import OPTIMIZERS, make_optimizer
from hmarl.core.replay import BatchSource, Sample
from hmarl.core.schedules import LR_SCALINGS, SCHEDULES, make_schedule, scale_lr
from hmarl.core.selection import SelectionConfig, make_selection
from hmarl.core.targets import TARGET_UPDATES, hard_update, make_target, polyak_update

Batch = TypeVar("Batch")
HOOK_POINTS = ("before_loss", "after_backward", "after_step")
COMPILE_MODES = ("none", "default", "max-autotune")
logger = logging.getLogger(__name__)


@dataclass
class RowLoss:
    """A loss as one value per row, for the engine to reduce.

    The reduced loss is ``sum(w_i * values_i) / normalizer + auxiliary``: ``values`` is
    ``(B, ...)`` (trailing dimensions, agents for instance, are summed), ``w`` the
    sampler's importance weights (1 without), ``normalizer`` defaults to
    ``values.numel()`` (a mean), and ``auxiliary`` is a scalar added unweighted (a
    supervised head trained beside the TD loss). ``scores`` ``(B,)`` go back to the
    sampler and to a selection stage: by default each row's values, summed.
    """

    values: torch.Tensor
    scores: torch.Tensor | None = None
    normalizer: torch.Tensor | float | None = None
    auxiliary: torch.Tensor | None = None

    def reduce(self, weights: torch.Tensor | None) -> torch.Tensor:
        values = self.values
        if weights is not None:
            values = values * weights.reshape(weights.shape + (1,) * (values.dim() - 1)).to(values.dtype)
        loss = values.mean() if self.normalizer is None else values.sum() / self.normalizer
        return loss if self.auxiliary is None else loss + self.auxiliary

    def row_scores(self) -> torch.Tensor:
        if self.scores is not None:
            return self.scores.detach()
        return self.values.detach().flatten(1).sum(1) if self.values.dim() > 1 else self.values.detach()


LossFn = Callable[[Batch], tuple[RowLoss | torch.Tensor, Mapping[str, torch.Tensor]]]


@dataclass
class UpdateContext:
    """What the hooks of one update see (see the module's docstring)."""

    engine: UpdateEngine
    batch: Any
    sample: Sample | None
    loss: torch.Tensor | None = None
    rows: RowLoss | None = None


class Selection(Protocol):
    """Chooses, from scored candidate rows, the ones that go through the gradient pass.

    The engine draws ``candidates(batch_size)`` rows at a time, scores them without
    gradients and keeps the positions ``choose`` returns, until ``batch_size`` are kept.
    Optional methods: ``begin_update(updates)``, called with the engine's update count
    before an update's candidates are drawn, and ``score(sample, scorer)``, returning a
    score per candidate where ``scorer(rows)`` scores a :class:`Sample` without gradients
    (a selection that keeps scores, StaleSB, scores only the rows it must). Without
    ``score`` the engine scores every candidate.
    """

    def candidates(self, batch_size: int) -> int: ...

    def choose(self, scores: torch.Tensor, sample: Sample) -> torch.Tensor: ...


# A selection that keeps too few rows would draw forever; past this many rounds the
# kept rows are topped up with the candidates of the last round.
MAX_SELECTION_ROUNDS = 64


class NonFiniteLossError(RuntimeError):
    """The loss or gradient norm was NaN or infinite; no parameter was changed."""


@dataclass
class EngineConfig:
    """What the update engine needs to know; algorithm configs extend it."""

    optimizer: str = option("adam", "optimiser", choices=OPTIMIZERS)
    lr: float = option(3e-4, "learning rate at --base-batch-size (before --lr-scaling)")
    lr_scaling: str = option("none", "scale lr with batch size: none, sqrt (LB-SAC) or linear", choices=LR_SCALINGS)
    batch_size: int = option(256, "transitions per update")
    base_batch_size: int = option(256, "batch size at which --lr was tuned")
    weight_decay: float = option(0.0, "weight decay (decoupled for adamw and adamod)")
    adam_eps: float = option(1e-8, "epsilon in the denominator of Adam-type optimisers")
    adamod_beta3: float = option(0.999, "AdaMod's averaging coefficient for step sizes")
    schedule: str = option("constant", "learning-rate schedule", choices=SCHEDULES)
    autowu_check_every: int = option(100, "updates between AutoWU minimum checks during warm-up")
    max_grad_norm: float = option(10.0, "clip the global gradient norm to this (0 disables)")
    bf16: bool = option(True, "bf16 autocast for the loss on CUDA (ignored on CPU)")
    compile: str = option(
        "none",
        "torch.compile the whole gradient step (loss, backward, clipping, optimiser step): none (eager), "
        "default, or max-autotune (longer compilation, tuned kernels); metrics and the finiteness check then "
        "stay on the device until they are logged",
        choices=COMPILE_MODES,
    )
    cuda_graphs: bool = option(
        False, "replay the compiled gradient step from CUDA graphs (CUDA only; needs --compile default or max-autotune)"
    )
    target_update: str = option(
        "hard", "target networks: hard copy every period, or polyak every update", choices=TARGET_UPDATES
    )
    target_update_period: int = option(500, "updates between hard target copies")
    tau: float = option(0.005, "Polyak coefficient for target updates")


def _rows_and_loss(output: RowLoss | torch.Tensor, weights: torch.Tensor | None) -> tuple[RowLoss | None, torch.Tensor]:
    """A loss function's output as its rows (``None`` for a scalar loss) and the loss."""
    if isinstance(output, RowLoss):
        return output, output.reduce(weights)
    return None, output


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
        check_choice("compile", config.compile, COMPILE_MODES)
        if config.cuda_graphs and config.compile == "none":
            raise ValueError("cuda_graphs=True needs compile='default' or 'max-autotune', got compile='none'")
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
        if config.cuda_graphs and self.device.type != "cuda":
            raise ValueError(f"cuda_graphs=True needs a CUDA device; this engine's parameters are on {self.device}")
        lr = scale_lr(config.lr, config.batch_size, config.base_batch_size, config.lr_scaling)
        #: Compiled updates keep their checks and metrics on the device (see the module's docstring).
        self.deferred = config.compile != "none"
        # The schedule writes into this tensor, so a new rate is no new graph.
        self._lr = torch.tensor(lr, device=self.device) if self.deferred else None
        self.optimizer = make_optimizer(
            config.optimizer,
            self.parameters,
            lr=lr if self._lr is None else self._lr,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
            adamod_beta3=config.adamod_beta3,
        )
        self.schedule = make_schedule(
            config.schedule, lr, total_updates, autowu_check_every=config.autowu_check_every, seed=seed
        )
        self.max_grad_norm = config.max_grad_norm if config.max_grad_norm > 0 else float("inf")
        self.autocast = config.bf16 and self.device.type == "cuda"
        #: The updates this engine is planned to run (what schedules and hooks scale by).
        self.total_updates = max(int(total_updates), 1)
        self.updates = 0
        self.backward_rows = 0
        self.scored_rows = 0
        self.hooks: list[Any] = []
        self._hook_calls: dict[str, list[Callable[[UpdateContext], None]]] = {point: [] for point in HOOK_POINTS}
        self.selection: Selection | None = (
            make_selection(config, self.device, seed) if isinstance(config, SelectionConfig) else None
        )
        self._compiled: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._compiled_steps: dict[Callable[..., Any], Callable[..., Any]] = {}
        # All updates since the last check_finite were finite (a device bool, deferred mode).
        self._healthy = torch.ones((), dtype=torch.bool, device=self.device) if self.deferred else None
        self._checked_updates = 0
        self._eager_reported = False

    def add_hook(self, hook: Any) -> Any:
        """Call ``hook`` at every update from now on, after the hooks added before it."""
        if not any(hasattr(hook, name) for name in (*HOOK_POINTS, "state_dict")):
            raise TypeError(
                f"a hook needs at least one of the methods {', '.join(HOOK_POINTS)} or state_dict; "
                f"{type(hook).__name__} has none"
            )
        self.hooks.append(hook)
        for point in HOOK_POINTS:
            if hasattr(hook, point):
                self._hook_calls[point].append(getattr(hook, point))
        return hook

    def _loss_function(self, loss_fn: LossFn) -> LossFn:
        if self.config.compile == "none":
            return loss_fn
        if loss_fn not in self._compiled:
            self._compiled[loss_fn] = torch.compile(loss_fn, mode=self._compile_mode())
        return self._compiled[loss_fn]

    def _compile_mode(self) -> str:
        """torch.compile's mode for ``config.compile`` and ``config.cuda_graphs``. CUDA graphs
        come from Inductor's own graph trees: they capture each graph the update is
        compiled into (forward, backward, optimiser step) with the static inputs and memory
        pools they need, where a hand-made ``torch.cuda.graph`` would need static copies of
        every batch and a backward outside autograd's usual path."""
        graphs = self.config.cuda_graphs
        if self.config.compile == "max-autotune":
            return "max-autotune" if graphs else "max-autotune-no-cudagraphs"
        return "reduce-overhead" if graphs else "default"

    def _row_loss(self, loss_fn: LossFn, batch: Any) -> tuple[RowLoss | torch.Tensor, Mapping[str, torch.Tensor]]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return self._loss_function(loss_fn)(batch)

    def draw(self, loss_fn: LossFn, source: BatchSource, batch_size: int | None = None) -> Sample:
        """``batch_size`` rows (default ``config.batch_size``) from ``source`` for a gradient
        pass of ``loss_fn``: drawn, or chosen by the selection stage when one is set. For a
        learner whose engines share one batch (the critic chooses, the actor reads them)."""
        rows_wanted = batch_size or self.config.batch_size
        if self.selection is None:
            return source.draw(rows_wanted)
        return self._select(loss_fn, source, rows_wanted)

    def _scores(self, loss_fn: LossFn, sample: Sample) -> torch.Tensor:
        rows, _ = self._row_loss(loss_fn, sample.batch)
        if not isinstance(rows, RowLoss):
            raise TypeError("a selection stage needs a loss function that returns a RowLoss (per-row values)")
        self.scored_rows += len(sample)
        return rows.row_scores()

    @torch.no_grad()
    def _select(self, loss_fn: LossFn, source: BatchSource, batch_size: int) -> Sample:
        """The selection stage: candidates scored without gradients until ``batch_size``
        rows are kept (see :class:`Selection`)."""
        selection = self.selection
        if selection is None:
            raise RuntimeError("the selection stage runs only on an engine with a selection")
        if hasattr(selection, "begin_update"):
            selection.begin_update(self.updates)
        score = getattr(selection, "score", None)

        def scorer(rows: Sample) -> torch.Tensor:
            return self._scores(loss_fn, rows)

        kept: list[Sample] = []
        count = 0
        for _ in range(MAX_SELECTION_ROUNDS):
            candidates = source.draw(selection.candidates(batch_size))
            scores = scorer(candidates) if score is None else score(candidates, scorer)
            chosen = candidates.take(selection.choose(scores, candidates))
            kept.append(chosen)
            count += len(chosen)
            if count >= batch_size:
                break
        else:
            kept.append(candidates)
        joined = Sample.join(kept)
        return joined.take(torch.arange(batch_size, device=joined.index.device))

    def update(self, loss_fn: LossFn, source: BatchSource | Sample | Any, batch_size: int | None = None) -> dict[str, Any]:
        """One optimiser step on ``loss_fn`` over a batch; returns the update's metrics.

        ``source`` is where the rows come from: a :class:`BatchSource` (a replay buffer)
        the engine draws ``batch_size`` rows from (default ``config.batch_size``; through
        the selection stage when one is set) and returns the rows' scores to; a drawn
        :class:`Sample` (its weights apply, its source gets the scores); or a batch as the
        loss function reads it. ``loss_fn`` returns a :class:`RowLoss` or a scalar loss,
        and a dict of extra tensors to log. Eagerly, a non-finite loss or gradient raises
        :class:`NonFiniteLossError` before the optimiser step, so the parameters, the
        targets and the sampler stay as they were. Compiled (``self.deferred``), the loss
        and gradient norm come back as device tensors, a non-finite update leaves the
        parameters, the optimiser's state and the targets as they were (its rows' scores go
        back to the sampler as zeros), and :meth:`check_finite` raises at the next read.
        """
        start = time.perf_counter()
        sample: Sample | None
        if hasattr(source, "draw"):
            sample = self.draw(loss_fn, typing.cast(BatchSource, source), batch_size)
        else:
            sample = source if isinstance(source, Sample) else None
        context = UpdateContext(self, source if sample is None else sample.batch, sample)
        for call in self._hook_calls["before_loss"]:
            call(context)
        weights = None if sample is None else sample.weights
        if self.deferred:
            self._device_lr().fill_(self.schedule.lr)
            self.optimizer.zero_grad(set_to_none=True)
            loss, grad_norm, scores, extras = self._gradient_step_of(loss_fn, context)(context.batch, weights)
            loss_value, grad_norm_value = loss, grad_norm
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = self.schedule.lr
            self.optimizer.zero_grad(set_to_none=True)
            output, extras = self._row_loss(loss_fn, context.batch)
            rows, loss = _rows_and_loss(output, weights)
            loss.backward()
            context.loss, context.rows = loss, rows
            for call in self._hook_calls["after_backward"]:
                call(context)
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
            scores = None if rows is None else rows.row_scores()
        lr = self.schedule.lr
        self.schedule.step(loss_value)
        self.updates += 1
        self._update_targets()
        for call in self._hook_calls["after_step"]:
            call(context)
        if scores is not None and sample is not None and sample.source is not None:
            sample.source.feedback(sample.index, scores)
        batch_rows = len(sample) if sample is not None else self.config.batch_size
        self.backward_rows += batch_rows
        elapsed = time.perf_counter() - start
        return {
            "loss": loss_value,
            "grad_norm": grad_norm_value,
            "lr": lr,
            "samples_per_second": batch_rows / elapsed if elapsed > 0 else float("inf"),
            **extras,
        }

    def _device_lr(self) -> torch.Tensor:
        """The learning rate as a device tensor, which a deferred engine's compiled step reads."""
        if self._lr is None:
            raise RuntimeError("only a deferred engine keeps its learning rate on the device")
        return self._lr

    def _gradient_step_of(self, loss_fn: LossFn, context: UpdateContext) -> Callable[..., Any]:
        """The deferred gradient step for ``loss_fn``: compiled, or eager (with the update's
        ``context`` for its hooks) when a hook acts inside the update and cannot be
        captured (said once)."""
        uncapturable = [
            type(call.__self__).__name__ if hasattr(call, "__self__") else repr(call)
            for call in self._hook_calls["after_backward"]
            if not getattr(getattr(call, "__self__", call), "capturable", False)
        ]
        if uncapturable:
            if not self._eager_reported:
                self._eager_reported = True
                logger.warning(
                    "the update engine runs eagerly (compile=%r asked for): the after_backward hooks %s "
                    "cannot be captured (a hook that can sets capturable = True)",
                    self.config.compile,
                    ", ".join(uncapturable),
                )
            return lambda batch, weights: self._gradient_step(loss_fn, batch, weights, context)
        if loss_fn not in self._compiled_steps:
            # torch.compile keeps its graphs and its recompilation budget per code object:
            # a copy of the step's code for each engine and loss keeps engines (a learner
            # has several) from evicting each other's graphs.
            method = UpdateEngine._gradient_step
            own = types.FunctionType(method.__code__.replace(), method.__globals__, method.__name__, method.__defaults__)
            step = own.__get__(self)

            def compiled(batch: Any, weights: torch.Tensor | None) -> Any:
                return step(loss_fn, batch, weights)

            self._compiled_steps[loss_fn] = torch.compile(compiled, mode=self._compile_mode())
        return self._compiled_steps[loss_fn]

    def _gradient_step(
        self, loss_fn: LossFn, batch: Any, weights: torch.Tensor | None, context: UpdateContext | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, Mapping[str, torch.Tensor]]:
        """Loss, backward, clipping and the optimiser step with nothing read on the host.
        A non-finite loss or gradient norm clears ``_healthy``, and while it is clear the
        parameters and the optimiser's state are put back as they were before the step."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            output, extras = loss_fn(batch)
        rows, loss = _rows_and_loss(output, weights)
        loss.backward()
        context = context or UpdateContext(self, batch, None)
        context.loss, context.rows = loss, rows
        for call in self._hook_calls["after_backward"]:
            call(context)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm, foreach=True)
        loss = loss.detach()
        healthy = self._healthy
        if healthy is None:
            raise RuntimeError("the device-side gradient step runs only on a deferred engine")
        healthy &= torch.isfinite(loss) & torch.isfinite(grad_norm)
        with torch.no_grad():
            before = [
                (param.clone(), {key: value.clone() for key, value in self._tensor_state(param)}) for param in self.parameters
            ]
            self.optimizer.step()
            for param, (old, old_state) in zip(self.parameters, before, strict=True):
                param.copy_(torch.where(healthy, param, old))
                for key, value in self._tensor_state(param):
                    # State the step created (the first step's) goes back to zero.
                    previous = old_state.get(key, torch.zeros_like(value))
                    value.copy_(torch.where(healthy.to(value.device), value, previous))
        scores = None if rows is None else torch.nan_to_num(rows.row_scores(), nan=0.0, posinf=0.0, neginf=0.0)
        return loss, grad_norm, scores, extras

    def _tensor_state(self, param: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [(key, value) for key, value in self.optimizer.state[param].items() if torch.is_tensor(value)]

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLossError` if an update since the last check was not finite
        (deferred mode; the eager path raises at the update itself). This reads the device."""
        if self._healthy is None:
            return
        healthy = bool(self._healthy)
        first, self._checked_updates = self._checked_updates + 1, self.updates
        if not healthy:
            self._healthy.fill_(True)
            raise NonFiniteLossError(
                f"non-finite loss or gradient norm at an update between {first} and {self.updates}; the "
                "parameters, the optimiser's state and the targets were left as they were before it"
            )

    def _update_targets(self) -> None:
        for name, target in self.targets.items():
            if self.config.target_update == "polyak":
                # Deferred: a non-finite update (the online networks kept) moves no target.
                tau = self.config.tau if self._healthy is None else self._healthy * self.config.tau
                polyak_update(target, self.modules[name], tau)
            elif self.updates % self.config.target_update_period == 0:
                hard_update(target, self.modules[name], self._healthy)

    @staticmethod
    def _portable(optimizer_state: dict[str, Any]) -> dict[str, Any]:
        """The optimiser's state with its learning rate as a number, whichever mode wrote it."""
        groups = [{**group, "lr": float(group["lr"])} for group in optimizer_state["param_groups"]]
        return {**optimizer_state, "param_groups": groups}

    def _own_settings(self, optimizer_state: Mapping[str, Any]) -> dict[str, Any]:
        """A saved optimiser state with this engine's learning rate (a tensor when compiled)
        and kernel settings, so an eager run's checkpoint resumes compiled and back."""
        own = ("lr", "foreach", "capturable")
        groups = [
            {**saved, **{key: mine[key] for key in own if key in mine}}
            for saved, mine in zip(optimizer_state["param_groups"], self.optimizer.param_groups, strict=True)
        ]
        return {**optimizer_state, "param_groups": groups}

    def _stateful(self) -> list[Any]:
        return [part for part in (*self.hooks, self.selection) if hasattr(part, "state_dict")]

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": self.modules.state_dict(),
            "targets": self.targets.state_dict(),
            "optimizer": self._portable(self.optimizer.state_dict()),
            "schedule": self.schedule.state_dict(),
            "updates": self.updates,
            "backward_rows": self.backward_rows,
            "scored_rows": self.scored_rows,
            "hooks": [part.state_dict() for part in self._stateful()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        stateful = self._stateful()
        saved = state.get("hooks", [])
        if len(saved) != len(stateful):
            raise ValueError(
                f"the checkpoint holds the state of {len(saved)} hooks and selection stages, this engine has "
                f"{len(stateful)} with state; add the same hooks, in the same order, before loading"
            )
        self.modules.load_state_dict(state["modules"])
        self.targets.load_state_dict(state["targets"])
        self.optimizer.load_state_dict(self._own_settings(state["optimizer"]))
        self.schedule.load_state_dict(state["schedule"])
        self.updates = int(state["updates"])
        self.backward_rows = int(state.get("backward_rows", 0))
        self.scored_rows = int(state.get("scored_rows", 0))
        self._checked_updates = self.updates
        if self._healthy is not None:
            self._healthy.fill_(True)
        for part, part_state in zip(stateful, saved, strict=True):
            part.load_state_dict(part_state)
