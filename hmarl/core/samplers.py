"""Samplers: which stored rows an update reads, with what weight, and what it learns back.

Replay storage (:class:`hmarl.core.ReplayBuffer`) holds the rows; a sampler decides
which of them to draw. It works on storage slots (``row * num_streams + stream``), so
one sampler serves every buffer layout:

* ``draw(buffer, count)`` returns the slots and per-row importance weights (None when
  every row weighs the same);
* ``written(slots)`` / ``retired(slots)`` tell it which slots became sampleable (a
  complete n-step window) and which stopped being so (about to be overwritten);
* ``feedback(slots, scores)`` takes per-row scores back after an update (the loss's
  TD errors, for instance);
* ``state_dict`` / ``load_state_dict`` carry its state through checkpoints.

``uniform`` draws exactly as the replay always did. ``prioritized`` is proportional
prioritised replay (Schaul et al. 2016) over a sum-tree kept on the training device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from hmarl.core.config import check_choice, option

if TYPE_CHECKING:
    from hmarl.core.replay import ReplayBuffer

SAMPLERS = ("uniform", "prioritized")


@dataclass
class SamplerConfig:
    """How replay rows are drawn; every off-policy learner's config includes it."""

    sampler: str = option("uniform", "replay sampler: uniform, or prioritized (proportional PER)", choices=SAMPLERS)
    priority_alpha: float = option(0.6, "prioritized: priority exponent alpha (0: uniform)")
    priority_beta: float = option(0.4, "prioritized: importance-weight exponent at the start, annealed to 1")
    priority_eps: float = option(1e-6, "prioritized: added to |score| so no stored row has priority 0")


class Sampler(Protocol):
    """What a replay buffer asks of its sampler (see the module's docstring)."""

    def draw(self, buffer: ReplayBuffer, count: int) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def written(self, slots: torch.Tensor) -> None: ...

    def retired(self, slots: torch.Tensor) -> None: ...

    def feedback(self, slots: torch.Tensor, scores: torch.Tensor) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class UniformSampler:
    """Every sampleable slot equally likely, with replacement; no weights, no feedback."""

    def __init__(self, device: torch.device, seed: int = 0) -> None:
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def draw(self, buffer: ReplayBuffer, count: int) -> tuple[torch.Tensor, None]:
        drawn = torch.randint(len(buffer), (count,), generator=self.generator, device=buffer.device)
        oldest_row = (buffer.next_row - buffer.filled_rows) % buffer.rows
        row = (oldest_row + drawn // buffer.num_streams) % buffer.rows
        return row * buffer.num_streams + drawn % buffer.num_streams, None

    def written(self, slots: torch.Tensor) -> None:
        pass

    def retired(self, slots: torch.Tensor) -> None:
        pass

    def feedback(self, slots: torch.Tensor, scores: torch.Tensor) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class SumTree:
    """A binary sum-tree over ``capacity`` non-negative leaves, as one flat tensor.

    Node ``i`` holds the sum of nodes ``2i`` and ``2i + 1``; leaves start at ``size``
    (a power of two). Writes and prefix-sum searches are vectorised over many leaves at
    once: one tensor operation per tree level, no Python loop over rows. Sums are kept
    in float64 so that a million leaves' prefix sums stay exact enough to never land on
    an empty leaf.
    """

    def __init__(self, capacity: int, device: torch.device) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.size = 1 << max(capacity - 1, 1).bit_length()
        self.depth = self.size.bit_length() - 1
        self.nodes = torch.zeros(2 * self.size, dtype=torch.float64, device=device)
        # Row ``i`` of this view is node ``i``'s two children.
        self.children = self.nodes.view(self.size, 2)

    @property
    def total(self) -> torch.Tensor:
        return self.nodes[1]

    def leaves(self, index: torch.Tensor) -> torch.Tensor:
        return self.nodes[index + self.size]

    def set(self, index: torch.Tensor, values: torch.Tensor) -> None:
        """Leaves ``index`` take ``values``; every ancestor is summed anew."""
        node = index + self.size
        self.nodes[node] = values.to(torch.float64)
        for _ in range(self.depth):
            node = node // 2
            self.nodes[node] = self.children[node].sum(-1)

    def find(self, prefix: torch.Tensor) -> torch.Tensor:
        """For each value in ``prefix`` (in ``[0, total)``), the leaf whose cumulative range holds it."""
        node = torch.ones_like(prefix, dtype=torch.long)
        for _ in range(self.depth):
            left = self.children[node, 0]
            right = prefix >= left
            prefix = prefix - left * right
            node = 2 * node + right
        return node - self.size


class PrioritizedSampler:
    """Proportional prioritised replay (Schaul et al. 2016).

    Slot ``i`` is drawn with probability ``p_i / sum_k p_k``, ``p_i = (|score_i| + eps) **
    alpha``; a slot enters with the largest priority seen so far, so every row is replayed
    at least once before its score is known. Draws are stratified: the total is cut into
    ``count`` equal segments and one value is drawn in each. The importance weights are
    ``(N * P(i)) ** -beta`` divided by the batch's largest weight (the normalisation of
    most implementations; the paper's is over all rows), with ``beta`` annealed linearly
    from ``beta`` to 1 over ``beta_draws`` draws.
    """

    def __init__(
        self,
        capacity: int,
        device: torch.device,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        beta_draws: int = 100_000,
        seed: int = 0,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"priority_alpha must be >= 0, got {alpha}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"priority_beta must be in [0, 1], got {beta}")
        if eps <= 0:
            raise ValueError(f"priority_eps must be > 0, got {eps}")
        if beta_draws < 1:
            raise ValueError(f"beta_draws must be >= 1, got {beta_draws}")
        self.tree = SumTree(capacity, device)
        self.alpha = alpha
        self.beta_start = beta
        self.eps = eps
        self.beta_draws = beta_draws
        self.draws = 0
        # Kept on the device, so that taking scores back needs no host synchronisation.
        self.max_priority = torch.ones((), dtype=torch.float64, device=device)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    @property
    def beta(self) -> float:
        progress = min(self.draws / self.beta_draws, 1.0)
        return self.beta_start + progress * (1.0 - self.beta_start)

    def draw(self, buffer: ReplayBuffer, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        total = self.tree.total
        uniform = torch.rand(count, generator=self.generator, device=total.device, dtype=torch.float64)
        prefix = (torch.arange(count, device=total.device, dtype=torch.float64) + uniform) * (total / count)
        # Rounding may put the last prefix on the total itself, past every leaf.
        prefix = torch.minimum(prefix, torch.nextafter(total, total.new_zeros(())))
        slots = self.tree.find(prefix).clamp_(max=self.tree.capacity - 1)
        probability = self.tree.leaves(slots) / total
        weights = (len(buffer) * probability).pow(-self.beta)
        self.draws += 1
        return slots, (weights / weights.max()).float()

    def written(self, slots: torch.Tensor) -> None:
        self.tree.set(slots, self.max_priority.expand(slots.shape))

    def retired(self, slots: torch.Tensor) -> None:
        self.tree.set(slots, torch.zeros(slots.shape, dtype=torch.float64, device=slots.device))

    def feedback(self, slots: torch.Tensor, scores: torch.Tensor) -> None:
        priorities = (scores.detach().abs().double() + self.eps).pow(self.alpha)
        # A slot drawn twice in one batch keeps one of its scores; they are equal up to
        # the row's relabelling, and either is a fresh estimate.
        self.max_priority = torch.maximum(self.max_priority, priorities.max())
        self.tree.set(slots, priorities)

    def state_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.tree.nodes,
            "draws": self.draws,
            "max_priority": self.max_priority,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["nodes"].shape != self.tree.nodes.shape:
            raise ValueError(
                f"the checkpoint's priority tree has {state['nodes'].shape[0] // 2} leaves, this sampler "
                f"{self.tree.size}; was it written with another replay capacity?"
            )
        self.tree.nodes.copy_(state["nodes"])  # in place: the children view stays valid
        self.draws = int(state["draws"])
        self.max_priority = torch.as_tensor(state["max_priority"], dtype=torch.float64, device=self.tree.nodes.device)
        self.generator.set_state(state["generator"])


def make_sampler(config: SamplerConfig, capacity: int, device: torch.device, total_draws: int, seed: int = 0) -> Sampler:
    """The sampler ``config.sampler`` names, for a replay of ``capacity`` slots that will
    be drawn from about ``total_draws`` times (prioritised replay anneals beta over them)."""
    check_choice("sampler", config.sampler, SAMPLERS)
    if config.sampler == "uniform":
        return UniformSampler(device, seed)
    return PrioritizedSampler(
        capacity,
        device,
        config.priority_alpha,
        config.priority_beta,
        config.priority_eps,
        beta_draws=max(total_draws, 1),
        seed=seed,
    )
