"""Sparse training from scratch (RLx2: Tan et al., ICLR 2023) as hooks on the update core.

Every learner whose configuration includes :class:`SparseConfig` gets it from the
training loop through :func:`attach_sparse`, without any code of its own beyond a
policy distance for the dynamic buffer (``policy_distance(engine_name, rows)``):

* **Sparsity allocation.** Erdős–Rényi layer densities (:func:`erdos_renyi_densities`),
  density ∝ (fan_in + fan_out) / (fan_in · fan_out), for ``--actor-sparsity`` over the
  engine named ``actor`` and ``--sparsity`` over every other engine (critics, Q-networks,
  both hierarchical levels). A layer whose density would exceed 1 is dense. Every linear
  layer's weight is sparse (each member of a vectorised ensemble on its own, with the
  same count); biases stay dense.
* **Masks** (:class:`SparseTraining`, one hook per engine): the initial mask keeps the
  largest |w| (the reference's choice). After backward the gradients are masked; after
  the optimiser step and the target update the weights and the target networks are
  multiplied by the masks, so a masked weight is exactly zero after every update, with
  any optimiser, weight decay, Polyak or hard target update.
* **RigL** every ``--topology-period`` updates until the end of the engine's run: per
  layer (per ensemble member) drop the ``ζ_t · active`` active weights of smallest |w| and
  grow as many inactive ones of largest dense |gradient| (the gradient of that update,
  taken before masking), grown weights starting at 0; ``ζ_t = ζ₀/2 (1 + cos(π t / T_end))``.
* **Delayed multi-step TD** (:class:`ReplayControl`): 1-step targets (whatever the
  learner's own ``--n-step``) for ``--nstep-delay`` updates, then the replay sums
  ``--delayed-nstep``-step returns (:meth:`hmarl.core.ReplayBuffer.set_n_step`).
* **Dynamic-capacity buffer** (:class:`ReplayControl`): every ``--buffer-check-period``
  updates, the learner's policy distance over the oldest ``8 × batch`` transitions; above
  ``--buffer-threshold``, the oldest 10% are dropped, never below ``--buffer-min``.
* **FLOPs from the masks** (:meth:`SparseRun.flops`) and **sparse export**
  (:func:`export_sparse`, :func:`load_sparse`, :func:`csr_inference`).

Optimiser state: at each topology update, the optimiser's per-weight state (Adam's first
and second moments, AdaMod's step-size average) is zeroed for dropped and for grown
weights, so a grown weight starts from zero with fresh moments; surviving weights keep
theirs. The reference code only resets SGD's ``momentum_buffer`` and leaves Adam's
moments as they were, relying on re-masking the weights after every step (which this
hook also does). The reference also skips the optimiser step of an update that changes
the topology; here the step runs and the topology changes after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hmarl.core.config import check_choice, option
from hmarl.core.engine import UpdateContext, UpdateEngine
from hmarl.core.ensemble import VectorizedLinear

TOPOLOGIES = ("rigl", "static")
#: The reference's schedule: 10,000-update topology and buffer periods and a 300,000-update
#: n-step delay in a run of 3M steps; a run of another length keeps these shares.
PERIOD_SHARE = 10_000 / 3_000_000
#: Short runs keep at least this many updates between topology updates or buffer checks
#: (RigL's period in supervised training), so grown weights have time to grow.
MIN_PERIOD = 100
DELAY_SHARE = 300_000 / 3_000_000
#: SAC's minimum buffer in the reference, 2e5 of 3e6 steps.
BUFFER_MIN_SHARE = 200_000 / 3_000_000
BUFFER_CHECK_BATCHES = 8
BUFFER_DROP_SHARE = 0.1
CONTINUOUS_THRESHOLD = 0.2
DISCRETE_THRESHOLD = 0.5
ACTOR_ENGINES = ("actor",)
ACTING_EXCLUDED = ("critic",)


@dataclass
class SparseConfig:
    """RLx2 sparse training; every option is inert while --sparsity and --actor-sparsity are 0."""

    sparsity: float = option(
        0.0,
        "RLx2: share of the critic's / Q-network's weights held at zero, over layers by Erdős-Rényi, "
        "in [0, 1) (0: dense, and no other sparse-training option acts)",
    )
    actor_sparsity: float = option(float("nan"), "RLx2: share of the actor's weights held at zero (nan: --sparsity)")
    topology: str = option(
        "rigl",
        "rigl: drop the smallest weights and grow the largest gradients every --topology-period updates; "
        "static: the initial mask throughout",
        choices=TOPOLOGIES,
    )
    topology_period: int = option(
        0,
        "updates between topology updates, >= 1 (0: 1/300 of each network's updates, the reference's 10k of 3M, at least 100)",
    )
    drop_fraction: float = option(0.5, "share of active weights dropped at the start, decayed by cosine to 0")
    delayed_nstep: int = option(3, "n of the multi-step TD target after --nstep-delay (1: 1-step throughout)")
    nstep_delay: int = option(
        -1,
        "updates with 1-step targets before the switch to --delayed-nstep (-1: a tenth of the run, the "
        "reference's 300k of 3M)",
    )
    dynamic_buffer: bool = option(
        True, "drop the oldest transitions while the policy distance on them exceeds --buffer-threshold"
    )
    buffer_threshold: float = option(
        float("nan"),
        "policy distance above which the oldest transitions are dropped (nan: 0.2 for continuous "
        "actions, the reference's; 0.5 for discrete ones)",
    )
    buffer_min: int = option(0, "transitions the dynamic buffer keeps at least (0: 1/15 of the run's steps, >= 8 batches)")
    buffer_check_period: int = option(0, "updates between policy-distance checks (0: 1/300 of the run, at least 100)")


def sparse_active(config: Any) -> bool:
    """Whether ``config`` asks for sparse training (a :class:`SparseConfig` with a sparsity > 0)."""
    if not isinstance(config, SparseConfig):
        return False
    actor = config.sparsity if math.isnan(config.actor_sparsity) else config.actor_sparsity
    return config.sparsity > 0 or actor > 0


def check_sparse(config: SparseConfig, total_updates: int) -> None:
    """Raise a ValueError naming the option for any invalid sparse-training value."""
    for name in ("sparsity", "actor_sparsity"):
        value = getattr(config, name)
        if name == "actor_sparsity" and math.isnan(value):
            continue
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name}={value} is not valid; it must be in [0, 1) (0: dense)")
    check_choice("topology", config.topology, TOPOLOGIES)
    if config.topology_period < 0:
        raise ValueError(f"topology_period={config.topology_period} is not valid; it must be >= 1 (or 0: 1/300 of the run)")
    if not 0.0 <= config.drop_fraction <= 1.0:
        raise ValueError(f"drop_fraction={config.drop_fraction} is not valid; it must be in [0, 1]")
    if config.delayed_nstep < 1:
        raise ValueError(f"delayed_nstep={config.delayed_nstep} is not valid; it must be >= 1 (1: off)")
    if config.nstep_delay < -1:
        raise ValueError(f"nstep_delay={config.nstep_delay} is not valid; it must be >= 0 (or -1: a tenth of the run)")
    if sparse_active(config) and config.delayed_nstep > 1 and config.nstep_delay >= total_updates:
        raise ValueError(
            f"nstep_delay={config.nstep_delay} is longer than the run's {total_updates} updates; it must be below "
            "them (or -1: a tenth of the run)"
        )
    if not (math.isnan(config.buffer_threshold) or config.buffer_threshold > 0):
        raise ValueError(f"buffer_threshold={config.buffer_threshold} is not valid; it must be > 0 (nan: default)")
    for name in ("buffer_min", "buffer_check_period"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name}={getattr(config, name)} is not valid; it must be >= 0 (0: default)")


# --- allocation -------------------------------------------------------------------------
def erdos_renyi_densities(shapes: Sequence[Sequence[int]], sparsity: float) -> list[float]:
    """Per-layer densities with ``sum(d_l n_l) = (1 - sparsity) sum(n_l)``, ``d_l ∝ sum(shape_l)
    / prod(shape_l)`` (Erdős–Rényi; the kernel form for more than two dimensions), and every
    layer whose density would exceed 1 made dense (RigL's allocation). ``shapes`` are the
    layers' weight shapes (one member's, for an ensemble)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity={sparsity} is not valid; it must be in [0, 1)")
    counts = [math.prod(shape) for shape in shapes]
    raw = [sum(shape) / count for shape, count in zip(shapes, counts, strict=True)]
    dense: set[int] = set()
    while True:
        kept = sum((1.0 - sparsity) * n for i, n in enumerate(counts) if i not in dense)
        kept -= sum(sparsity * n for i, n in enumerate(counts) if i in dense)
        divisor = sum(raw[i] * counts[i] for i in range(len(counts)) if i not in dense)
        if divisor == 0:
            return [1.0] * len(counts)
        scale = kept / divisor
        over = [i for i in range(len(counts)) if i not in dense and raw[i] * scale > 1.0]
        if not over:
            return [1.0 if i in dense else raw[i] * scale for i in range(len(counts))]
        top = max(raw[i] for i in over)
        dense.update(i for i in over if raw[i] == top)


@dataclass
class SparseLayer:
    """One sparse weight: its mask, grouping (ensemble members) and target copies."""

    name: str
    weight: torch.Tensor
    mask: torch.Tensor
    groups: int
    shape: tuple[int, ...]
    targets: list[torch.Tensor]

    def grouped(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.reshape(self.groups, -1)


def _layer_weights(module: nn.Module) -> list[tuple[str, torch.Tensor, int, tuple[int, ...]]]:
    """(name, weight, groups, one group's shape) for each linear or convolution layer."""
    found: list[tuple[str, torch.Tensor, int, tuple[int, ...]]] = []
    for name, sub in module.named_modules():
        weight_name = f"{name}.weight" if name else "weight"
        if isinstance(sub, VectorizedLinear):
            found.append((weight_name, sub.weight, sub.weight.shape[0], tuple(sub.weight.shape[1:])))
        elif isinstance(sub, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            found.append((weight_name, sub.weight, 1, tuple(sub.weight.shape)))
    return [entry for entry in found if entry[1].requires_grad]


def _top_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """A (groups, n) bool mask of each row's ``keep`` largest scores."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if keep > 0:
        mask.scatter_(1, scores.topk(keep, dim=1).indices, True)
    return mask


class SparseTraining:
    """The sparse-training hook of one engine (see the module's docstring)."""

    def __init__(
        self,
        engine: UpdateEngine,
        sparsity: float,
        topology: str = "rigl",
        period: int = 0,
        drop_fraction: float = 0.5,
        end: int | None = None,
    ) -> None:
        check_choice("topology", topology, TOPOLOGIES)
        if period < 0:
            raise ValueError(f"topology_period={period} is not valid; it must be >= 1 (or 0: 1/300 of the run)")
        self.engine = engine
        self.sparsity = sparsity
        self.topology = topology
        self.end = engine.total_updates if end is None else end
        self.period = period or max(round(PERIOD_SHARE * self.end), MIN_PERIOD)
        self.drop_fraction = drop_fraction
        self.topology_updates = 0
        self.dense_gradient_updates = 0
        self.dropped: list[int] = []
        self._dense_grads: list[torch.Tensor] | None = None
        targets: dict[int, list[torch.Tensor]] = {}
        for module_name, target in engine.targets.items():
            online = dict(engine.modules[module_name].named_parameters())
            for param_name, param in target.named_parameters():
                targets.setdefault(id(online[param_name]), []).append(param)
        found = []
        for module_name, module in engine.modules.items():
            found += [
                (f"{module_name}.{name}", weight, groups, shape) for name, weight, groups, shape in _layer_weights(module)
            ]
        densities = erdos_renyi_densities([shape for _, _, _, shape in found], sparsity) if found else []
        self.layers: list[SparseLayer] = []
        self.densities = densities
        with torch.no_grad():
            for (name, weight, groups, shape), density in zip(found, densities, strict=True):
                per_group = math.prod(shape)
                keep = min(max(round(density * per_group), 1), per_group)
                mask = _top_mask(weight.detach().abs().reshape(groups, -1), keep).reshape(weight.shape)
                self.layers.append(SparseLayer(name, weight, mask, groups, shape, targets.get(id(weight), [])))
        self.apply_masks()

    # --- schedule -----------------------------------------------------------------------
    def due(self, update: int) -> bool:
        """Whether the topology changes after update number ``update`` (counted from 1)."""
        return self.topology == "rigl" and update % self.period == 0 and update < self.end

    def drop_fraction_at(self, update: int) -> float:
        """``ζ₀/2 (1 + cos(π t / T_end))``, 0 from the end on."""
        if update >= self.end:
            return 0.0
        return self.drop_fraction / 2 * (1 + math.cos(math.pi * update / self.end))

    # --- hook points --------------------------------------------------------------------
    @torch.no_grad()
    def after_backward(self, ctx: UpdateContext) -> None:
        if self.due(self.engine.updates + 1):
            self._dense_grads = [
                torch.zeros_like(layer.weight) if layer.weight.grad is None else layer.weight.grad.clone()
                for layer in self.layers
            ]
        grads = [layer.weight.grad for layer in self.layers if layer.weight.grad is not None]
        masks = [layer.mask for layer in self.layers if layer.weight.grad is not None]
        if grads:
            torch._foreach_mul_(grads, masks)

    @torch.no_grad()
    def after_step(self, ctx: UpdateContext) -> None:
        update = self.engine.updates
        if self.due(update) and self._dense_grads is not None:
            self.update_topology(self._dense_grads, self.drop_fraction_at(update))
            self.dense_gradient_updates += 1
        self._dense_grads = None
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero every masked weight, in the networks and their targets."""
        if not self.layers:
            return
        torch._foreach_mul_([layer.weight for layer in self.layers], [layer.mask for layer in self.layers])
        for layer in self.layers:
            for target in layer.targets:
                target.mul_(layer.mask)

    @torch.no_grad()
    def update_topology(self, dense_grads: Sequence[torch.Tensor], fraction: float) -> list[int]:
        """One RigL step with drop fraction ``fraction``; returns the weights dropped (and
        grown) per layer, summed over its groups."""
        counts = []
        for layer, grad in zip(self.layers, dense_grads, strict=True):
            old = layer.grouped(layer.mask)
            active = int(old[0].sum())
            drop = int(fraction * active)
            if drop == 0 or active == old.shape[1]:
                counts.append(0)
                continue
            weight = layer.grouped(layer.weight)
            # Inactive weights are exactly 0, so the top |w| are all active.
            survivors = _top_mask(weight.abs().masked_fill(~old, -1.0), active - drop)
            grow_scores = grad.reshape(layer.groups, -1).abs().masked_fill(survivors, -math.inf)
            grown = _top_mask(grow_scores, drop)
            new = survivors | grown
            weight.masked_fill_(grown, 0.0)
            layer.mask.copy_(new.reshape(layer.mask.shape))
            self._reset_optimizer_state(layer, (survivors & old).reshape(layer.mask.shape))
            counts.append(drop * layer.groups)
        self.topology_updates += 1
        self.dropped = counts
        return counts

    def _reset_optimizer_state(self, layer: SparseLayer, kept: torch.Tensor) -> None:
        state = self.engine.optimizer.state.get(layer.weight, {})
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.shape == layer.weight.shape:
                value.mul_(kept)

    # --- accounting -------------------------------------------------------------------
    def dense_flops(self) -> float:
        """Multiply-adds of one forward row through the sparse-able layers, dense: 2 per weight."""
        return 2.0 * sum(layer.mask.numel() for layer in self.layers)

    def sparse_flops(self) -> float:
        return 2.0 * sum(float(layer.mask.sum()) for layer in self.layers)

    def density(self) -> float:
        total = sum(layer.mask.numel() for layer in self.layers)
        return sum(float(layer.mask.sum()) for layer in self.layers) / total if total else 1.0

    def train_flops(self, updates: int | None = None) -> tuple[float, float]:
        """(sparse, dense) training FLOPs per row over ``updates`` updates (default: so far):
        forward and backward are 3 sparse forwards, and an update that takes the dense
        gradient for RigL computes the weight gradient densely (RigL's accounting)."""
        updates = self.engine.updates if updates is None else updates
        sparse, dense = self.sparse_flops(), self.dense_flops()
        return 3 * sparse * updates + self.dense_gradient_updates * (dense - sparse), 3 * dense * updates

    def state_dict(self) -> dict[str, Any]:
        return {
            "masks": [layer.mask.clone() for layer in self.layers],
            "topology_updates": self.topology_updates,
            "dense_gradient_updates": self.dense_gradient_updates,
            "dropped": list(self.dropped),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        masks = state["masks"]
        if len(masks) != len(self.layers):
            raise ValueError(f"the checkpoint holds {len(masks)} masks, this network has {len(self.layers)} sparse layers")
        for layer, mask in zip(self.layers, masks, strict=True):
            if layer.mask.shape != mask.shape:
                raise ValueError(f"mask of {layer.name}: checkpoint {tuple(mask.shape)}, network {tuple(layer.mask.shape)}")
            layer.mask.copy_(mask)
        self.topology_updates = int(state["topology_updates"])
        self.dense_gradient_updates = int(state["dense_gradient_updates"])
        self.dropped = list(state["dropped"])
        self.apply_masks()


class ReplayControl:
    """The replay side of RLx2 on the engine that draws from a replay: the delayed switch
    to n-step returns and the dynamic-capacity buffer. It finds its replay as the source of
    the engine's batches (``ctx.sample.source``); an engine that reads rows drawn elsewhere
    (SAC's actor) leaves it idle."""

    def __init__(
        self,
        engine: UpdateEngine,
        name: str,
        policy_distance: Any,
        nstep: int = 3,
        delay: int = -1,
        dynamic_buffer: bool = True,
        threshold: float = float("nan"),
        minimum: int = 0,
        check_period: int = 0,
        check_rows: int = 2048,
    ) -> None:
        self.engine = engine
        self.name = name
        self.policy_distance = policy_distance
        self.nstep = nstep
        total = engine.total_updates
        self.delay = max(round(DELAY_SHARE * total), 0) if delay < 0 else delay
        self.dynamic_buffer = dynamic_buffer and policy_distance is not None
        self.threshold = threshold
        self.minimum = minimum
        self.check_period = check_period or max(round(PERIOD_SHARE * total), MIN_PERIOD)
        self.check_rows = check_rows
        self.replay: Any = None
        self.switched = False
        self.distance = float("nan")
        self.dropped = 0
        self.checks = 0

    @staticmethod
    def _replay_of(ctx: UpdateContext) -> Any:
        sample = ctx.sample
        if sample is None or sample.source is None or not hasattr(sample.source, "set_n_step"):
            return None
        return sample.source

    def before_loss(self, ctx: UpdateContext) -> None:
        """1-step targets for the first ``delay`` updates, then ``nstep``-step ones: when the
        replay's n differs from this update's, it is set and the drawn rows gathered again."""
        replay = self.replay = self._replay_of(ctx)
        if replay is None or self.nstep == 1 or not replay.time_ordered:
            return
        wanted = self.nstep if self.engine.updates >= self.delay else 1
        if replay.n_step != wanted:
            if ctx.sample is None:
                raise TypeError("delayed n-step targets need rows drawn from the replay (a Sample)")
            replay.set_n_step(wanted)
            ctx.batch = replay.gather(ctx.sample.index)
            self.switched = wanted == self.nstep

    def after_step(self, ctx: UpdateContext) -> None:
        replay = self._replay_of(ctx)
        if replay is not None and self.dynamic_buffer and self.engine.updates % self.check_period == 0:
            self.check(replay)

    @torch.no_grad()
    def check(self, replay: Any) -> int:
        """One policy-distance check of the oldest transitions; returns how many were dropped."""
        self.checks += 1
        rows = replay.oldest(self.check_rows)
        self.distance = float(self.policy_distance(self.name, rows))
        threshold = self.threshold
        if math.isnan(threshold):
            action = rows.get("action")
            continuous = action is not None and action.is_floating_point()
            threshold = CONTINUOUS_THRESHOLD if continuous else DISCRETE_THRESHOLD
        stored = replay.filled_rows * replay.num_streams
        if self.distance <= threshold or stored <= self.minimum:
            return 0
        dropped = replay.drop_oldest(min(int(BUFFER_DROP_SHARE * stored), stored - self.minimum))
        self.dropped += dropped
        return dropped

    def state_dict(self) -> dict[str, Any]:
        return {"switched": self.switched, "distance": self.distance, "dropped": self.dropped, "checks": self.checks}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.switched = bool(state["switched"])
        self.distance = float(state["distance"])
        self.dropped = int(state["dropped"])
        self.checks = int(state["checks"])


class SparseRun:
    """The sparse-training hooks of one learner, by engine name, and their accounting."""

    def __init__(self, hooks: Mapping[str, SparseTraining], replays: Mapping[str, ReplayControl]) -> None:
        self.hooks = dict(hooks)
        self.replays = dict(replays)

    def flops(self) -> dict[str, float]:
        """Training and inference FLOPs relative to dense (the paper's measure), over the
        sparse-able layers of every engine; inference counts the acting networks (all but
        the critic)."""
        sparse = dense = 0.0
        for hook in self.hooks.values():
            s, d = hook.train_flops()
            sparse, dense = sparse + s, dense + d
        acting = [hook for name, hook in self.hooks.items() if name not in ACTING_EXCLUDED] or list(self.hooks.values())
        infer_dense = sum(hook.dense_flops() for hook in acting)
        return {
            "train_flops": sparse / dense if dense else 1.0,
            "inference_flops": sum(hook.sparse_flops() for hook in acting) / infer_dense if infer_dense else 1.0,
        }

    def metrics(self) -> dict[str, float]:
        values = self.flops()
        for name, hook in self.hooks.items():
            values[f"{name}_density"] = hook.density()
            values[f"{name}_topology_updates"] = float(hook.topology_updates)
        for name, control in self.replays.items():
            if control.replay is not None:
                values[f"{name}_nstep"] = float(control.replay.n_step)
                values[f"{name}_buffer"] = float(control.replay.filled_rows * control.replay.num_streams)
                values[f"{name}_policy_distance"] = control.distance
        return values

    def summary_fields(self) -> dict[str, str]:
        """What the run's summary line adds: FLOPs relative to dense and densities."""
        flops = self.flops()
        fields = {"train_flops": f"{flops['train_flops']:.3f}x", "inference_flops": f"{flops['inference_flops']:.3f}x"}
        fields.update({f"density_{name}": f"{hook.density():.3f}" for name, hook in self.hooks.items()})
        for name, control in self.replays.items():
            if control.replay is not None and control.dynamic_buffer:
                fields[f"buffer_{name}"] = str(control.replay.filled_rows * control.replay.num_streams)
        return fields


def attach_sparse(agent: Any, config: SparseConfig, total_steps: int) -> SparseRun | None:
    """Add RLx2's hooks to every engine of ``agent`` (``agent.engines()``) as ``config``
    says; None when the config asks for no sparsity. ``total_steps`` (environment steps of
    the run) sizes the buffer's default minimum."""
    if not sparse_active(config):
        return None
    actor_sparsity = config.sparsity if math.isnan(config.actor_sparsity) else config.actor_sparsity
    distance = getattr(agent, "policy_distance", None)
    if config.dynamic_buffer and distance is None:
        raise ValueError(
            f"dynamic_buffer needs a policy distance, which {type(agent).__name__} does not define; pass --no-dynamic-buffer"
        )
    batch = getattr(config, "batch_size", 256)
    minimum = config.buffer_min or max(BUFFER_CHECK_BATCHES * batch, round(BUFFER_MIN_SHARE * total_steps))
    hooks, replays = {}, {}
    for name, engine in agent.engines().items():
        sparsity = actor_sparsity if name in ACTOR_ENGINES else config.sparsity
        hook = SparseTraining(engine, sparsity, config.topology, config.topology_period, config.drop_fraction)
        if not hook.layers:
            continue
        hooks[name] = engine.add_hook(hook)
        replays[name] = engine.add_hook(
            ReplayControl(
                engine,
                name,
                distance,
                config.delayed_nstep,
                config.nstep_delay,
                config.dynamic_buffer,
                config.buffer_threshold,
                minimum,
                config.buffer_check_period,
                BUFFER_CHECK_BATCHES * batch,
            )
        )
    return SparseRun(hooks, replays)


# --- export and sparse inference ------------------------------------------------------
def export_sparse(module: nn.Module) -> dict[str, Any]:
    """The state of ``module`` with every linear weight as a sparse tensor of its non-zeros
    (CSR for a matrix, COO for an ensemble's stack); ``torch.save`` it for a compressed
    checkpoint. :func:`load_sparse` reads it back."""
    weights = {name for name, *_ in _layer_weights(module)}
    state = {}
    for name, tensor in module.state_dict().items():
        state[name] = _compressed(tensor) if name in weights else tensor
    return state


def _compressed(tensor: torch.Tensor) -> torch.Tensor:
    """CSR with 32-bit indices for a matrix; COO (64-bit indices) for a stack."""
    if tensor.dim() != 2:
        return tensor.to_sparse()
    csr = tensor.to_sparse_csr()
    if csr.values().numel() >= 2**31:
        return csr
    return torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape)


def load_sparse(module: nn.Module, state: Mapping[str, Any]) -> None:
    """Load an :func:`export_sparse` state into ``module`` (dense weights)."""
    module.load_state_dict(
        {
            name: value.to_dense() if value.is_sparse or value.layout == torch.sparse_csr else value
            for name, value in state.items()
        }
    )


class CSRLinear(nn.Module):
    """``nn.Linear`` with its weight in compressed sparse rows, for CPU inference."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight = linear.weight.detach().to_sparse_csr()
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        out = torch.sparse.mm(self.weight, flat.T).T
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], out.shape[-1])


def csr_inference(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose ``nn.Linear`` layers multiply with CSR weights."""
    import copy

    copied = copy.deepcopy(module)
    for _name, sub in list(copied.named_modules()):
        for child_name, child in list(sub.named_children()):
            if isinstance(child, nn.Linear):
                setattr(sub, child_name, CSRLinear(child))
    return copied
