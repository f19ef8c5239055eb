"""The ``hmarl`` command: train, evaluate, watch and play, list environments, run benchmarks.

    hmarl train hqmix --total-steps 100000           # any trainer; `hmarl train dqn --help`
    hmarl eval checkpoints/<run> --episodes 20        # greedy episodes as a table
    hmarl watch checkpoints/<run>                     # a pygame window; --out episode.gif to save
    hmarl play trash_collection_v0 --others random    # keyboard control of agent 0
    hmarl envs                                        # environments and their options
    hmarl bench env_throughput                        # benchmarks/<name>.py
    hmarl tune dqn --param lr=1e-5:1e-2:log ...       # hyperparameter search; `hmarl tune --help`

``python -m hmarl.trainers.<name>`` runs the same trainers.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import runpy
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Exit status of a run stopped by a non-finite loss or the divergence guard.
EXIT_STOPPED = 1
#: Exit status of refused input (argparse uses the same).
EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class Trainer:
    """A trainer script: its module, and how to rebuild the agent of one of its checkpoints."""

    module: str
    summary: str
    config: str = "Config"
    factory: str = "make_agent"
    factory_module: str = ""

    def load(self) -> Any:
        return importlib.import_module(f"hmarl.trainers.{self.module}")

    def agent_parts(self) -> tuple[type, Callable[..., Any]]:
        factory_module = importlib.import_module(f"hmarl.trainers.{self.factory_module or self.module}")
        return getattr(self.load(), self.config), getattr(factory_module, self.factory)


TRAINERS = {
    "dqn": Trainer("dqn", "double DQN (dueling, n-step) on a discrete-action environment"),
    "ae_dqn": Trainer("ae_dqn", "DQN with an action-elimination network and a contextual bandit"),
    "sac_n": Trainer(
        "sac_n",
        "SAC-N / LB-SAC, online (`sac_n online`) or offline (`sac_n offline`)",
        config="OnlineConfig",
        factory="make_online_agent",
    ),
    "hierarchical": Trainer("hierarchical", "a hierarchical learner; --high-level picks it", factory_module="hierarchical"),
    "ind_hdqn": Trainer(
        "ind_hdqn", "Ind-hDQN: independent high levels over a shared low level", factory_module="hierarchical"
    ),
    "hcom": Trainer("hcom", "hCom: communicating high levels (CommNet)", factory_module="hierarchical"),
    "hqmix": Trainer("hqmix", "hQmix: high levels mixed by a monotonic QMIX network", factory_module="hierarchical"),
    "qmix": Trainer("qmix", "flat QMIX over primitive actions, the cooperative baseline without hierarchy"),
    "low_level_only": Trainer("low_level_only", "random goals over the trained low level", factory_module="hierarchical"),
    "collect": Trainer("collect", "collect offline datasets (random/medium/replay/expert) with SAC-N"),
}


class CommandError(Exception):
    """Refused input of a subcommand, printed as one line."""


def _formatter(prog: str) -> argparse.HelpFormatter:
    from hmarl.training import HelpFormatter

    return HelpFormatter(prog)


# --- train ------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from hmarl.core import NonFiniteLossError
    from hmarl.training import CheckpointError, DivergenceError

    trainer = TRAINERS[args.algorithm]
    # The trainer's parser names itself after argv[0] in usage lines and errors.
    program, sys.argv[0] = sys.argv[0], f"hmarl train {args.algorithm}"
    try:
        trainer.load().main(args.options)
    except (NonFiniteLossError, DivergenceError) as error:
        print(f"hmarl train {args.algorithm}: stopped: {error}", file=sys.stderr)
        return EXIT_STOPPED
    except (ValueError, TypeError, FileNotFoundError, CheckpointError) as error:
        if getattr(error, "during_training", False):
            raise
        print(f"hmarl train {args.algorithm}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        sys.argv[0] = program
    return 0


# --- restoring a run --------------------------------------------------------------


@dataclass
class LoadedRun:
    algorithm: str
    config: Any
    agent: Any
    checkpoint: Path


def load_run(run: str, algorithm: str = "", device: str = "cpu") -> LoadedRun:
    """The agent of a run directory's newest intact checkpoint (or of a checkpoint file)."""
    import torch

    from hmarl.training import EnvSpec, budget_of, make_vector_env, open_checkpoint, restore_agent

    path, checkpoint = open_checkpoint(run)
    algorithm = algorithm or checkpoint.get("algorithm", "")
    if algorithm not in TRAINERS:
        raise CommandError(
            f"checkpoint {str(path)!r} does not say which trainer wrote it; pass --algorithm, one of {sorted(TRAINERS)}"
            if not algorithm
            else f"algorithm={algorithm!r} is not valid; choose one of {sorted(TRAINERS)}"
        )
    if "dataset" in checkpoint["config"]:
        raise CommandError(f"{str(path)!r} is an offline run; its evaluations are in its summary and TensorBoard logs")
    from hmarl.training.config import config_from_dict

    config_cls, factory = TRAINERS[algorithm].agent_parts()
    config: Any = config_from_dict(config_cls, checkpoint["config"])  # the trainer's own config class
    # Agents that keep per-copy state (running options) are sized by the training copies.
    spec = EnvSpec.of(make_vector_env(config.env, config.num_envs, config.env_kwargs))
    agent = factory(config, spec, budget_of(config), torch.device(device))
    restore_agent(agent, checkpoint["agent"])
    return LoadedRun(algorithm, config, agent, path)


# --- eval -------------------------------------------------------------------------


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(column) for column in columns]] + [
        [f"{value:.3f}" if isinstance(value, float) else str(value) for value in row] for row in rows
    ]
    widths = [max(len(row[k]) for row in cells) for k in range(len(columns))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=False)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from hmarl.training import evaluate_episodes, make_vector_env

    if args.episodes < 1:
        raise CommandError(f"episodes={args.episodes} is not valid; it must be >= 1")
    loaded = load_run(args.run, args.algorithm, args.device)
    config = loaded.config
    env = make_vector_env(config.env, args.episodes, config.env_kwargs)
    results = evaluate_episodes(loaded.agent, env, args.seed, torch.device(args.device))
    columns = ["episode", *results]
    rows = [[k, *(float(values[k]) for values in results.values())] for k in range(args.episodes)]
    print(
        f"{loaded.algorithm} run {config.run_name}: {args.episodes} greedy episodes of {config.env} "
        f"(checkpoint {loaded.checkpoint}, seed {args.seed})"
    )
    print(format_table(columns, rows))
    stats = [
        ["mean", *(float(values.mean()) for values in results.values())],
        ["std", *(float(values.std()) for values in results.values())],
    ]
    print(format_table(columns, stats).split("\n", 2)[2])
    return 0


# --- watch ------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalView:
    """What ``watch`` shows of one agent's option: its goal (-1 while it chooses), the
    goal's name, the steps the option has run, and its target's rectangle in pixels."""

    agent: int
    goal: int
    name: str
    steps: int
    target: tuple[int, int, int, int] | None


#: Side in pixels of the marker on a target that is a point rather than a grid cell.
POINT_MARKER = 18


def goal_target(env: Any, renderer: Any, agent: int, goal: int) -> tuple[int, int, int, int] | None:
    """The pixel rectangle of where ``goal`` sends ``agent`` in copy 0, for the renderers
    that place one: a grid cell (trash collection) or a point on the court (basketball)."""
    core = env.core
    cell_rect = getattr(renderer, "_cell_rect", None)
    n_cells = getattr(core, "width", 0) * getattr(core, "height", 0)
    if cell_rect is not None and n_cells:
        goals = np.zeros((1, env.n_agents), dtype=np.int64)
        goals[0, agent] = goal
        cells = env.goal_encoding(goals)[0, agent, :n_cells]
        return tuple(cell_rect(core, int(cells.argmax()))) if cells.any() else None
    to_pixels, targets = getattr(renderer, "_to_pixels", None), getattr(core, "_goal_targets", None)
    if to_pixels is not None and targets is not None:
        x, y = to_pixels(*targets()[:, goal, 0])
        return (x - POINT_MARKER // 2, y - POINT_MARKER // 2, POINT_MARKER, POINT_MARKER)
    return None


def _renderer(env: Any) -> Any:
    return importlib.import_module(type(env.core).__module__.rsplit(".", 1)[0] + ".render")


def goal_overlay(agent: Any, env: Any) -> list[GoalView]:
    """Each agent's current option, for a hierarchical agent acting on ``env`` (one
    copy); empty for agents without options."""
    options = getattr(agent, "eval_options", None)
    if options is None or not hasattr(env, "goal_names"):
        return []
    renderer = _renderer(env)
    views = []
    for index, goal in enumerate(options.goals[0].tolist()):
        if goal < 0:
            views.append(GoalView(index, goal, "", 0, None))
        else:
            target = goal_target(env, renderer, index, goal)
            views.append(GoalView(index, goal, env.goal_names[goal], int(options.elapsed[0, index]), target))
    return views


MARKER_COLOURS = [(230, 60, 60), (60, 160, 230), (240, 200, 40), (120, 220, 90), (200, 90, 220), (250, 140, 40)]


def draw_overlay(frame: np.ndarray, env: Any, views: Sequence[GoalView], option_len: int) -> np.ndarray:
    """``frame`` with a marker on each goal's target and a panel of the agents' goals."""
    import pygame

    from hmarl.envs._render import font

    if not views:
        return frame
    line = 18
    height, width = frame.shape[:2]
    surface = pygame.Surface((width, height + line * len(views) + 6))
    surface.fill((25, 25, 30))
    surface.blit(pygame.surfarray.make_surface(frame.swapaxes(0, 1)), (0, 0))
    text = font(14)
    # The agents' own colours where the renderer has them, so marker and agent match.
    colours = getattr(_renderer(env), "AGENT_COLOURS", MARKER_COLOURS)
    for view in views:
        colour = colours[view.agent % len(colours)]
        if view.target is not None:
            # Nested frames, so agents that share a target stay visible.
            grow = 8 - 6 * view.agent
            pygame.draw.rect(surface, colour, pygame.Rect(view.target).inflate(grow, grow), width=3)
        if view.goal < 0:
            label = f"agent {view.agent}: choosing"
        else:
            label = f"agent {view.agent}: {view.name}  step {view.steps}/{option_len}"
        surface.blit(text.render(label, True, colour), (6, height + 3 + line * view.agent))
    return pygame.surfarray.array3d(surface).swapaxes(0, 1).copy()


def rendering_env(config: Any) -> Any:
    """One copy of the run's environment that renders frames."""
    from hmarl.training import make_vector_env

    try:
        env = make_vector_env(config.env, 1, {**config.env_kwargs, "render_mode": "rgb_array"})
    except TypeError as error:
        raise CommandError(
            f"env={config.env!r} cannot render frames ({error}); watch shows hmarl.envs environments"
        ) from error
    if not hasattr(env, "render"):
        raise CommandError(f"env={config.env!r} has no renderer; watch shows hmarl.envs environments")
    return env


def greedy_frames(loaded: LoadedRun, env: Any, episodes: int, seed: int, max_steps: int) -> Iterator[np.ndarray]:
    """Frames of ``episodes`` greedy episodes on ``env``, goals drawn in, as they are played."""
    import torch

    from hmarl.training.loop import attach_env, to_tensors

    option_len = getattr(loaded.agent, "option_len", 0)
    device = getattr(loaded.agent, "device", torch.device("cpu"))
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        attach_env(loaded.agent, env, evaluation=True)
        frame = env.render(0)
        done, steps = False, 0
        while not done and steps < max_steps:
            with torch.no_grad():
                actions = loaded.agent.act_greedy(to_tensors(obs, device))
            overlay = goal_overlay(loaded.agent, env)
            yield draw_overlay(frame, env, overlay, option_len)
            obs, _, terminated, truncated, _ = env.step(actions.cpu().numpy())
            done = bool((terminated | truncated)[0])
            steps += 1
            frame = env.render(0)
        # The last state, under the goals that led to it.
        yield draw_overlay(frame, env, overlay, option_len)


def save_video(frames: Sequence[np.ndarray], path: str, fps: int) -> None:
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        from hmarl.envs._render import save_gif

        save_gif(frames, path, fps=fps)
        return
    if suffix == ".mp4":
        try:
            import imageio.v2 as imageio
        except ImportError:
            raise CommandError("out=*.mp4 needs imageio with ffmpeg: pip install 'hmarl[video]'") from None
        # Even sides, which the H.264 encoder needs.
        height, width = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
        imageio.mimwrite(path, [frame[:height, :width] for frame in frames], fps=fps, macro_block_size=1)
        return
    raise CommandError(f"out={path!r} is not valid; give a .gif or .mp4 path")


def show_frames(frames: Iterator[np.ndarray], fps: int, caption: str) -> None:
    """Show ``frames`` in a pygame window as they come; closing it or Esc stops."""
    import pygame

    pygame.init()
    height, width = 0, 0
    screen = None
    clock = pygame.time.Clock()
    for frame in frames:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                pygame.quit()
                return
        if screen is None or frame.shape[:2] != (height, width):
            height, width = frame.shape[:2]
            screen = pygame.display.set_mode((width, height))
            pygame.display.set_caption(caption)
        screen.blit(pygame.surfarray.make_surface(frame.swapaxes(0, 1)), (0, 0))
        pygame.display.flip()
        clock.tick(fps)
    pygame.quit()


def cmd_watch(args: argparse.Namespace) -> int:
    if args.episodes < 1 or args.max_steps < 1:
        raise CommandError("episodes and max_steps must be >= 1")
    if args.out:
        from hmarl.training.validation import check_writable_file

        check_writable_file("out", args.out)
        if Path(args.out).suffix.lower() not in (".gif", ".mp4"):
            raise CommandError(f"out={args.out!r} is not valid; give a .gif or .mp4 path")
    loaded = load_run(args.run, args.algorithm)
    env = rendering_env(loaded.config)
    fps = args.fps or int(env.metadata.get("render_fps", 10))
    frames = greedy_frames(loaded, env, args.episodes, args.seed, args.max_steps)
    if args.out:
        frame_list = list(frames)
        save_video(frame_list, args.out, fps)
        print(f"saved {len(frame_list)} frames of {args.episodes} greedy episode(s) to {args.out}")
    else:
        show_frames(frames, fps, f"hmarl watch {loaded.config.run_name}")
    return 0


# --- play -------------------------------------------------------------------------

#: Keys of the keyboard-controlled agent, by environment family: key name -> action name.
KEYMAPS = {
    "trash_collection": {
        "up": "up",
        "down": "down",
        "left": "left",
        "right": "right",
        "space": "pick",
        "return": "place",
        ".": "stay",
    },
    "basketball_defense": {
        "right": "run_0",
        "up": "run_90",
        "left": "run_180",
        "down": "run_270",
        "d": "slide_0",
        "w": "slide_90",
        "a": "slide_180",
        "s": "slide_270",
        "e": "run_45",
        "q": "run_135",
        "z": "run_225",
        "c": "run_315",
        "space": "steal",
        "b": "block",
        ".": "noop",
    },
}


def keymap_of(env_name: str, action_names: Sequence[str]) -> dict[str, int]:
    """Key name -> action index for ``env_name``; digit keys choose any action by its index."""
    family = re.sub(r"_v\d+$", "", env_name)
    keys = {key: action_names.index(name) for key, name in KEYMAPS.get(family, {}).items() if name in action_names}
    keys.update({str(k): k for k in range(min(len(action_names), 10))})
    return keys


def scripted_policy(env_name: str) -> Callable[[Any, np.random.Generator], np.ndarray] | None:
    """The environment's scripted policy for every agent, if it has one."""
    if env_name.startswith("basketball_defense"):
        from hmarl.envs.basketball_defense.scripted import man_to_man

        return man_to_man
    return None


def random_actions(action_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scores = np.where(action_mask > 0, rng.random(action_mask.shape), -1.0)
    return scores.argmax(-1)


class ScriptedKeys:
    """Key presses from a list, posted to pygame's event queue one per step (for tests and demos)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)

    def post_next(self) -> bool:
        import pygame

        if not self.keys:
            pygame.event.post(pygame.event.Event(pygame.QUIT))
            return False
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(self.keys.pop(0))))
        return True


def _other_agents(
    args: argparse.Namespace, env: Any, rng: np.random.Generator
) -> tuple[Callable[[dict[str, np.ndarray]], np.ndarray], Any]:
    """The policy of the agents the player does not steer (``--others``), and the loaded
    run behind it (``None`` for random and scripted agents)."""
    from hmarl.training.loop import to_tensors

    if args.others == "random":
        return lambda obs: random_actions(obs["action_mask"], rng), None
    if args.others == "scripted":
        policy = scripted_policy(args.env)
        if policy is None:
            raise CommandError(f"others=scripted: {args.env} has no scripted policy; use random or a run directory")
        return lambda obs: policy(env.core, rng), None
    loaded = load_run(args.others)
    if loaded.config.env != args.env:
        raise CommandError(f"others={args.others!r} was trained on {loaded.config.env}, not {args.env}")
    import torch

    def others(obs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return loaded.agent.act_greedy(to_tensors(obs, torch.device("cpu"))).cpu().numpy()

    return others, loaded


def cmd_play(args: argparse.Namespace) -> int:
    import pygame

    from hmarl.training.envs import make_rendering_env, render_frame
    from hmarl.training.loop import attach_env

    if args.env not in env_names(deprecated=True):
        raise CommandError(f"env={args.env!r} is not valid; choose one of {env_names()}")
    env_kwargs = json.loads(args.env_kwargs)
    env = make_rendering_env(args.env, 1, {**env_kwargs, "render_mode": "rgb_array"})
    if not 0 <= args.agent < env.n_agents:
        raise CommandError(f"agent={args.agent} is not valid; {args.env} has agents 0..{env.n_agents - 1}")
    core_module = importlib.import_module(type(env.core).__module__)
    action_names = list(getattr(core_module, "ACTION_NAMES", [str(k) for k in range(env.n_actions)]))
    keymap = keymap_of(args.env, action_names)
    others, loaded = _other_agents(args, env, np.random.default_rng(args.seed))
    script = ScriptedKeys(args.keys.split(",")) if args.keys else None
    pygame.init()
    obs, _ = env.reset(seed=args.seed)
    if loaded is not None:
        attach_env(loaded.agent, env, evaluation=True)
    frame = render_frame(env)
    screen = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
    pygame.display.set_caption(f"hmarl play {args.env}: agent {args.agent}")
    help_line = ", ".join(f"{key}={action_names[index]}" for key, index in keymap.items() if not key.isdigit())
    print(f"you are agent {args.agent}; keys: {help_line}; digits pick an action by index; Esc quits")
    total, steps = 0.0, 0
    while True:
        screen.blit(pygame.surfarray.make_surface(frame.swapaxes(0, 1)), (0, 0))
        pygame.display.flip()
        if script is not None:
            script.post_next()
        event = pygame.event.wait()
        if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
            break
        if event.type != pygame.KEYDOWN:
            continue
        key = pygame.key.name(event.key)
        if key not in keymap:
            continue
        actions = np.asarray(others(obs)).reshape(1, env.n_agents).copy()
        actions[0, args.agent] = keymap[key]
        obs, rewards, terminated, truncated, _ = env.step(actions)
        total += float(rewards[0].sum())
        steps += 1
        frame = render_frame(env)
        if (terminated | truncated)[0]:
            print(f"episode over after {steps} steps, team return {total:.2f}")
            total, steps = 0.0, 0
            if args.one_episode:
                break
            obs, _ = env.reset()
            if loaded is not None:
                attach_env(loaded.agent, env, evaluation=True)
            frame = render_frame(env)
    pygame.quit()
    print(f"played {steps} steps of the last episode, team return {total:.2f}")
    return 0


# --- envs -------------------------------------------------------------------------


def env_names(deprecated: bool = False) -> list[str]:
    """The environments of the registry, ``hmarl.envs.names``."""
    from hmarl import envs

    return envs.names(deprecated=deprecated)


def cmd_envs(args: argparse.Namespace) -> int:
    from hmarl import envs as hmarl_envs

    names = env_names()
    if args.name and args.name not in names:
        raise CommandError(f"name={args.name!r} is not valid; choose one of {names}")
    for name in [args.name] if args.name else names:
        module = hmarl_envs.get(name)
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        print(f"{name}: {summary}")
        env = module.vector_env(num_envs=1)
        print(f"  agents {env.n_agents}, actions {env.n_actions}, observation {env.obs_dim}, state {env.state_dim}")
        if hasattr(env, "goal_names"):
            print(f"  goals: {', '.join(env.goal_names)}")
        # The options are the simulation core's; the faces pass them through as **kwargs.
        signature = inspect.signature(type(env.core).__init__)
        options = [
            f"{parameter.name}={parameter.default!r}"
            for parameter in signature.parameters.values()
            if parameter.default is not inspect.Parameter.empty and parameter.name != "num_envs"
        ] + ["render_mode=None"]
        print(f"  options (--env-kwargs): {', '.join(options)}")
        if args.name and module.__doc__:
            print("\n" + inspect.cleandoc(module.__doc__))
    return 0


# --- bench ------------------------------------------------------------------------


def benchmarks_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "benchmarks"


def cmd_bench(args: argparse.Namespace) -> int:
    directory = benchmarks_dir()
    if not directory.is_dir():
        raise CommandError(f"the benchmarks are scripts of the source checkout; {directory} is missing")
    scripts = sorted(path.stem for path in directory.glob("*.py") if not path.stem.startswith("_"))
    if not args.name:
        for name in scripts:
            doc = (ast_docstring(directory / f"{name}.py") or "").strip().splitlines()
            print(f"{name}: {doc[0] if doc else ''}")
        return 0
    if args.name not in scripts:
        raise CommandError(f"name={args.name!r} is not valid; choose one of {scripts}")
    path = directory / f"{args.name}.py"
    saved = sys.argv
    sys.argv = [str(path), *args.options]
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved
    return 0


def ast_docstring(path: Path) -> str | None:
    import ast

    return ast.get_docstring(ast.parse(path.read_text()))


# --- tune -------------------------------------------------------------------------


def cmd_tune(args: argparse.Namespace) -> int:
    from hmarl.tune.cli import main as tune_main

    return tune_main(args.options)


# --- the command ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hmarl", description=__doc__, formatter_class=_formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train an algorithm (options: hmarl train <algorithm> --help)",
        formatter_class=_formatter,
        description="Train an algorithm. Everything after the algorithm goes to its trainer; "
        "`hmarl train <algorithm> --help` lists its options.\n\nalgorithms:\n"
        + "\n".join(f"  {name:15s} {trainer.summary}" for name, trainer in TRAINERS.items()),
    )
    train.add_argument("algorithm", choices=sorted(TRAINERS), help="the trainer to run")
    train.add_argument("options", nargs=argparse.REMAINDER, help="the trainer's options")
    train.set_defaults(handler=cmd_train)

    def run_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("run", help="a run's checkpoint directory (its newest intact checkpoint) or a checkpoint file")
        sub.add_argument("--algorithm", default="", help="the trainer that wrote the run (default: read from it)")
        sub.add_argument("--seed", type=int, default=0, help="seed of the first episode's environment")

    evaluate = commands.add_parser("eval", help="greedy episodes of a trained run, as a table", formatter_class=_formatter)
    run_arguments(evaluate)
    evaluate.add_argument("--episodes", type=int, default=10, help="greedy episodes to play")
    evaluate.add_argument("--device", default="cpu", help="torch device to act on")
    evaluate.set_defaults(handler=cmd_eval)

    watch = commands.add_parser(
        "watch",
        help="a trained run plays in a pygame window (or --out GIF/MP4)",
        formatter_class=_formatter,
        description="Watch greedy episodes of a trained run. Hierarchical learners show each agent's current "
        "goal, the steps its option has run, and a marker on the goal's target.",
    )
    run_arguments(watch)
    watch.add_argument("--out", default="", help="write the frames to this .gif or .mp4 instead of a window")
    watch.add_argument("--episodes", type=int, default=1, help="episodes to play")
    watch.add_argument("--max-steps", type=int, default=1000, help="steps at most per episode")
    watch.add_argument("--fps", type=int, default=0, help="frames per second (0: the environment's)")
    watch.set_defaults(handler=cmd_watch)

    play = commands.add_parser(
        "play",
        help="play an environment from the keyboard",
        formatter_class=_formatter,
        description="Control one agent from the keyboard; one key press is one step. Arrow keys move, "
        "digits pick an action by index, Esc quits.",
    )
    play.add_argument("env", help="an hmarl.envs environment (see `hmarl envs`)")
    play.add_argument("--env-kwargs", default="{}", help="keyword arguments of the environment as JSON")
    play.add_argument("--agent", type=int, default=0, help="the agent you control")
    play.add_argument(
        "--others",
        default="random",
        help="the other agents: random, scripted (the environment's scripted policy) or a run directory",
    )
    play.add_argument("--seed", type=int, default=0, help="seed of the environment and of random agents")
    play.add_argument("--keys", default="", help="comma-separated key names played in order (e.g. up,up,space)")
    play.add_argument("--one-episode", action="store_true", help="quit when the first episode ends")
    play.set_defaults(handler=cmd_play)

    envs = commands.add_parser("envs", help="the environments and their options", formatter_class=_formatter)
    envs.add_argument("name", nargs="?", default="", help="show this environment in full")
    envs.set_defaults(handler=cmd_envs)

    bench = commands.add_parser(
        "bench",
        help="run a benchmark script (no name: list them)",
        formatter_class=_formatter,
        description="Run benchmarks/<name>.py with the given options; without a name, list the benchmarks.",
    )
    bench.add_argument("name", nargs="?", default="", help="the benchmark")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's options")
    bench.set_defaults(handler=cmd_bench)

    tune = commands.add_parser(
        "tune",
        help="hyperparameter search on Ray Tune: BOIL, random, TPE, ASHA (options: hmarl tune --help)",
        formatter_class=_formatter,
        add_help=False,
        description="Search a trainer's hyperparameters; `hmarl tune --help` lists the options. "
        'Needs the tune extra: pip install -e ".[tune]".',
    )
    tune.add_argument("options", nargs=argparse.REMAINDER, help="the options of hmarl tune")
    tune.set_defaults(handler=cmd_tune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tune"]:
        # Every option after `tune` is its own, --help included.
        return cmd_tune(argparse.Namespace(options=argv[1:]))
    args = build_parser().parse_args(argv)
    if args.command in ("train", "tune"):
        return args.handler(args)
    from hmarl.training import CheckpointError

    try:
        return args.handler(args)
    except (CommandError, CheckpointError, FileNotFoundError, ValueError, json.JSONDecodeError) as error:
        print(f"hmarl {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def entry_point() -> None:
    """The ``hmarl`` console script."""
    raise SystemExit(main())


if __name__ == "__main__":
    entry_point()
