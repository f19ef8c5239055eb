"""What every value-based learner here shares: the double-Q bootstrap, the masked random
choice and the linear epsilon decay (DQN, AE-DQN, flat QMIX and both levels of the
hierarchical learners)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hmarl.core import option


@dataclass
class EpsilonConfig:
    """Epsilon-greedy exploration decaying linearly over a fraction of the run."""

    epsilon_start: float = option(1.0, "exploration rate at the first step")
    epsilon_end: float = option(0.05, "exploration rate after the decay")
    exploration_fraction: float = option(0.5, "fraction of the environment steps over which epsilon decays")


def check_epsilons(start: float, end: float) -> None:
    """Refuse an epsilon schedule that is not ``0 <= end <= start <= 1``."""
    if not 0.0 <= end <= start <= 1.0:
        raise ValueError(
            f"epsilon_end and epsilon_start must satisfy 0 <= epsilon_end <= epsilon_start <= 1, got {end} and {start}"
        )


def some_allowed(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` where it allows something, all True where it rules everything out."""
    return mask | ~mask.any(-1, keepdim=True)


def masked_random_choice(allowed: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A uniformly random allowed index along the last dimension of ``allowed``."""
    scores = torch.rand(allowed.shape, generator=generator, device=allowed.device)
    return scores.masked_fill(~allowed, -1.0).argmax(-1)


def bootstrap_value(target: torch.Tensor, selector: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """The target network's value ``target`` at the action ``selector`` rates best among
    the ``allowed`` ones (last dimension). Double Q-learning passes the online network's
    values as ``selector``, plain Q-learning the target's own."""
    if allowed is not None:
        selector = selector.masked_fill(~allowed, -torch.inf)
    return target.gather(-1, selector.argmax(-1, keepdim=True)).squeeze(-1)


def linear_decay(step: float, span: float, start: float, end: float) -> float:
    """From ``start`` at step 0 to ``end`` at ``span`` steps and after (the epsilon schedule)."""
    progress = min(max(step, 0.0) / max(span, 1), 1.0)
    return start + progress * (end - start)
