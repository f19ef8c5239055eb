"""A hook of one's own, plugged into DQN's engine without editing DQN or the core.

The hook below measures the global gradient norm after every backward pass (before
clipping) and keeps the largest and the mean. A custom ``make_agent`` builds DQN as its
trainer does and adds the hook to each of the learner's engines (``agent.engines()``);
``train`` runs the ordinary loop.

    python examples/custom_hook.py --total-steps 3000
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import torch

from hmarl.core import UpdateContext
from hmarl.trainers import dqn
from hmarl.training import parse_config, train


class GradientNorm:
    """The global L2 norm of the gradients after each backward pass (kept on the device)."""

    def __init__(self) -> None:
        self.updates = 0
        self.largest = torch.zeros(())
        self.total = torch.zeros(())

    def after_backward(self, ctx: UpdateContext) -> None:
        grads = [p.grad for p in ctx.engine.parameters if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        self.largest = torch.maximum(self.largest.to(norm.device), norm.detach())
        self.total = self.total.to(norm.device) + norm.detach()
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:  # saved in the engine's checkpoint, so a resume goes on
        return {"updates": self.updates, "largest": self.largest, "total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates, self.largest, self.total = state["updates"], state["largest"], state["total"]

    @property
    def mean(self) -> float:
        return float(self.total) / self.updates if self.updates else float("nan")


HOOKS: list[GradientNorm] = []


def make_agent(*args: Any, **kwargs: Any) -> Any:
    agent = dqn.make_agent(*args, **kwargs)
    for engine in agent.engines().values():
        HOOKS.append(engine.add_hook(GradientNorm()))
    return agent


def main(argv: Sequence[str] | None = None) -> GradientNorm:
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = [
        "--env",
        "CartPole-v1",
        "--total-steps",
        "3000",
        "--learning-starts",
        "500",
        "--eval-every",
        "0",
        "--no-progress",
        "--log-dir",
        "runs",
        "--checkpoint-every",
        "0",
        "--run-name",
        "custom_hook",
    ]
    config = parse_config(dqn.Config, [*defaults, *argv], __doc__)
    HOOKS.clear()
    result = train(config, make_agent, "dqn")
    hook = HOOKS[0]
    print(f"updates seen by the hook: {hook.updates} (the run made {result.updates})")
    print(f"gradient norm: mean {hook.mean:.4f}, largest {float(hook.largest):.4f}")
    return hook


if __name__ == "__main__":
    main()
