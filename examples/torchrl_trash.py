"""The trash environment in TorchRL: PettingZooWrapper, action masks and a rollout.

TorchRL groups the agents (``agent``), reads the ``action_mask`` of PettingZoo's
observation dicts and returns the global ``state``. A random policy that respects the
masks plays ``--steps`` steps; the script prints the rollout's keys and shapes.

    python examples/torchrl_trash.py --steps 50
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from torchrl.envs import PettingZooWrapper

from hmarl.envs import trash_collection_v0


def masked_random_policy(td):
    """A random action per agent among the actions its mask allows."""
    mask = td["agent", "action_mask"]
    td["agent", "action"] = torch.multinomial(mask.float(), 1).squeeze(-1)
    return td


def main(argv: Sequence[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps in the rollout")
    parser.add_argument("--layout", default="room", help="trash_collection layout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    torch.manual_seed(args.seed)
    env = PettingZooWrapper(
        trash_collection_v0.parallel_env(layout=args.layout), use_mask=True, return_state=True, seed=args.seed
    )
    rollout = env.rollout(args.steps, policy=masked_random_policy, break_when_any_done=False)
    taken = rollout["agent", "action"]
    allowed = rollout["agent", "action_mask"].gather(-1, taken.unsqueeze(-1)).all()
    print(f"rollout batch size: {tuple(rollout.batch_size)}")
    print(f"observation: {tuple(rollout['agent', 'observation', 'observation'].shape)}")
    print(f"action_mask: {tuple(rollout['agent', 'action_mask'].shape)}")
    print(f"state: {tuple(rollout['state'].shape)}")
    print(f"team reward: {float(rollout['next', 'agent', 'reward'].sum()):.2f}")
    print(f"every action allowed by its mask: {bool(allowed)}")
    return rollout


if __name__ == "__main__":
    main()
