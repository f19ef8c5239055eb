"""Time of one hierarchical round (the low level's ``--low-updates`` steps and one
high-level step) on ``room``, per update mode, measured in the same run.

    python benchmarks/hier_round.py                                 # Ind-hDQN on the CPU, eager and compiled
    python benchmarks/hier_round.py --trainer hqmix --device cuda --modes none default default+graphs

The replay is filled by acting (the agent's own exploration) for ``--fill-steps``
environment steps past the high level's start, then rounds are timed on it: the median
of ``--repeats`` measurements of ``--rounds`` rounds each, after two warm-up rounds (a
compiled mode compiles there).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hmarl.trainers import hierarchical
from update_throughput import MODES, mode_options

from hmarl.training import (
    Budget,
    EnvSpec,
    make_vector_env,
    parse_config,
    to_tensors,
    transition,
)
from hmarl.training.loop import attach_env


def filled_agent(trainer: str, mode: str, device: torch.device, fill_steps: int):
    module = importlib.import_module(f"hmarl.trainers.{trainer}")
    options = mode_options(mode)
    argv = ["--high-level-starts", "0", "--device", str(device)]
    if options:
        argv += ["--compile", options["compile"]] + (["--cuda-graphs"] if options["cuda_graphs"] else [])
    config = parse_config(module.Config, argv)
    env = make_vector_env(config.env, config.num_envs, config.env_kwargs)
    agent = hierarchical.make_agent(config, EnvSpec.of(env), Budget(10**6, 10**6), device)
    obs, _ = env.reset(seed=0)
    attach_env(agent, env, evaluation=False)
    obs_tensors = to_tensors(obs, device)
    for step in range(0, fill_steps, config.num_envs):
        actions = agent.act(obs_tensors, step)
        next_obs, rewards, terminated, truncated, infos = env.step(actions.cpu().numpy())
        next_tensors = to_tensors(next_obs, device)
        agent.store(transition(obs_tensors, actions, rewards, next_tensors, terminated, truncated, infos, device))
        obs_tensors = next_tensors
    if not (agent.can_update() and agent.high_level_learning()):
        raise ValueError(f"--fill-steps {fill_steps} did not fill both levels' replay to a batch; give more")
    return agent


def round_seconds(agent, device: torch.device, rounds: int, repeats: int) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(2):
        agent.update()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(rounds):
            agent.update()
        sync()
        times.append((time.perf_counter() - start) / rounds)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainer", default="ind_hdqn", choices=["ind_hdqn", "hcom", "hqmix"], help="the learner")
    parser.add_argument("--device", default="cpu", help="the training device")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["none", "default"],
        choices=MODES,
        help="update modes side by side (see benchmarks/update_throughput.py)",
    )
    parser.add_argument("--fill-steps", type=int, default=20_000, help="environment steps of acting before timing")
    parser.add_argument("--rounds", type=int, default=20, help="rounds per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per mode; the table shows their median")
    args = parser.parse_args(argv)
    for name in ("fill_steps", "rounds", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    device = torch.device(args.device)
    if device.type != "cuda" and any("+graphs" in mode for mode in args.modes):
        raise ValueError(f"--modes {' '.join(args.modes)}: a +graphs mode needs --device cuda, got {args.device}")
    results = {}
    print(
        f"hierarchical round of {args.trainer} on room, {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    print(f"{'mode':<22}{'ms per round':>14}{'x ' + args.modes[0]:>12}")
    for mode in args.modes:
        agent = filled_agent(args.trainer, mode, device, args.fill_steps)
        results[mode] = round_seconds(agent, device, args.rounds, args.repeats)
        print(f"{mode:<22}{1e3 * results[mode]:>14.2f}{results[args.modes[0]] / results[mode]:>12.2f}", flush=True)
    return results


if __name__ == "__main__":
    main()
