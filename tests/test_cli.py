"""The ``hmarl`` command: every subcommand runs in a subprocess, headless."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hmarl import cli

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


def hmarl(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hmarl.cli", *args],
        cwd=cwd,
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def hqmix_run(tmp_path_factory) -> Path:
    """A short hQmix run on the room layout: enough for its high level to choose goals."""
    directory = tmp_path_factory.mktemp("cli")
    done = hmarl(
        "train",
        "hqmix",
        "--total-steps",
        "1500",
        "--num-envs",
        "8",
        "--learning-starts",
        "300",
        "--high-level-starts",
        "300",
        "--batch-size",
        "32",
        "--eval-every",
        "0",
        "--run-name",
        "room",
        "--high-buffer-size",
        "2000",
        "--low-buffer-size",
        "2000",
        "--no-progress",
        cwd=directory,
    )
    assert done.returncode == 0, done.stderr
    assert "summary run=room" in done.stdout
    return directory / "checkpoints" / "room"


def test_the_console_script_is_declared():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'hmarl = "hmarl.cli:entry_point"' in text


@pytest.mark.parametrize(
    "command",
    [[], ["train"], ["train", "hqmix"], ["train", "sac_n"], ["eval"], ["watch"], ["play"], ["envs"], ["bench"]],
)
def test_help_at_every_level(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage:" in text
    if command == ["train", "hqmix"]:
        assert "--checkpoint-replay" in text and "--stop-on-divergence" in text and "--mixer-embed" in text


def test_eval_prints_a_table_of_greedy_episodes(hqmix_run):
    done = hmarl("eval", str(hqmix_run), "--episodes", "3", cwd=hqmix_run.parent)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("hqmix run room: 3 greedy episodes of trash_collection_v0")
    assert lines[1].split() == ["episode", "return", "length", "trash_collected", "success"]
    assert [line.split()[0] for line in lines[3:]] == ["0", "1", "2", "mean", "std"]


def test_watch_writes_frames_with_the_goals_of_a_hierarchical_learner(hqmix_run, tmp_path):
    gif = tmp_path / "watch.gif"
    done = hmarl("watch", str(hqmix_run), "--out", str(gif), "--max-steps", "12", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "saved 13 frames" in done.stdout
    with Image.open(gif) as image:
        assert image.n_frames == 13
        # The goals panel sits below the environment's own frame.
        from hmarl.training import make_vector_env

        env = make_vector_env("trash_collection_v0", 1, {"layout": "room", "render_mode": "rgb_array"})
        env.reset(seed=0)
        height, width = env.render(0).shape[:2]
        assert image.size[0] == width and image.size[1] > height


def test_the_goal_overlay_names_goals_marks_targets_and_counts_steps(hqmix_run):
    import torch

    from hmarl.training import make_vector_env
    from hmarl.training.loop import attach_env, to_tensors

    loaded = cli.load_run(str(hqmix_run))
    env = make_vector_env("trash_collection_v0", 1, {"layout": "room", "render_mode": "rgb_array"})
    obs, _ = env.reset(seed=0)
    attach_env(loaded.agent, env, evaluation=True)
    for _step in range(3):
        with torch.no_grad():
            actions = loaded.agent.act_greedy(to_tensors(obs, torch.device("cpu")))
        overlay = cli.goal_overlay(loaded.agent, env)
        obs, *_ = env.step(actions.numpy())
    frame = env.render(0)
    assert [view.agent for view in overlay] == [0, 1]
    for view in overlay:
        if view.goal < 0:
            continue
        assert view.name == env.goal_names[view.goal] and 0 <= view.steps <= 2
        if view.name.startswith("goto_"):
            x, y, w, h = view.target
            assert 0 <= x and x + w <= frame.shape[1] and 0 <= y and y + h <= frame.shape[0]
        else:
            assert view.target is None
    drawn = cli.draw_overlay(frame, env, overlay, option_len=30)
    assert drawn.shape[0] > frame.shape[0] and (drawn[: frame.shape[0]] != frame).any()


def test_goals_on_the_court_are_marked_where_they_send_the_defender():
    from hmarl.training import make_vector_env

    env = make_vector_env("basketball_defense_v1", 1, {"render_mode": "rgb_array"})
    env.reset(seed=0)
    frame = env.render(0)
    renderer = cli._renderer(env)
    targets = {cli.goal_target(env, renderer, 0, goal) for goal in range(len(env.goal_names))}
    assert None not in targets and len(targets) > 2
    for x, y, w, h in targets:
        assert 0 <= x + w // 2 < frame.shape[1] and 0 <= y + h // 2 < frame.shape[0]


def test_watch_writes_an_mp4(hqmix_run, tmp_path):
    import imageio.v2 as imageio

    video = tmp_path / "watch.mp4"
    done = hmarl("watch", str(hqmix_run), "--out", str(video), "--max-steps", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with imageio.get_reader(video) as reader:
        assert reader.count_frames() == 6


def test_watch_plays_in_a_window(hqmix_run, tmp_path):
    done = hmarl("watch", str(hqmix_run), "--max-steps", "3", "--fps", "100", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.iterdir())


def test_a_resume_refuses_a_learners_section_option_by_name(hqmix_run, tmp_path):
    done = hmarl("train", "hqmix", "--resume", str(hqmix_run), "--mixer-embed", "16", cwd=hqmix_run.parents[1])
    assert done.returncode == 2
    assert "cannot change on --resume: mixer_embed (8 in the run, 16 given)" in done.stderr


def test_watch_refuses_an_unknown_output_format(hqmix_run, tmp_path):
    done = hmarl("watch", str(hqmix_run), "--out", str(tmp_path / "episode.avi"), cwd=tmp_path)
    assert done.returncode == 2 and "give a .gif or .mp4 path" in done.stderr


def test_play_is_driven_by_scripted_key_presses(tmp_path):
    done = hmarl("play", "trash_collection_v0", "--keys", "up,up,right,space,return,.,3,x", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Seven keys map to actions; "x" is no key of this environment and plays no step.
    assert "played 7 steps" in done.stdout
    scripted = hmarl(
        "play", "basketball_defense_v1", "--others", "scripted", "--agent", "2", "--keys", "up,e,space,b", cwd=tmp_path
    )
    assert scripted.returncode == 0, scripted.stderr
    assert "played 4 steps" in scripted.stdout


def test_play_with_trained_teammates(hqmix_run, tmp_path):
    done = hmarl(
        "play", "trash_collection_v0", "--others", str(hqmix_run), "--agent", "1", "--keys", "left,down", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "played 2 steps" in done.stdout


def test_play_refuses_bad_input_by_name(capsys):
    assert cli.main(["play", "chess_v9"]) == 2
    assert "hmarl play: error: env='chess_v9' is not valid" in capsys.readouterr().err
    assert cli.main(["play", "trash_collection_v0", "--agent", "5"]) == 2
    assert "agent=5 is not valid; trash_collection_v0 has agents 0..1" in capsys.readouterr().err
    assert cli.main(["play", "trash_collection_v0", "--others", "scripted"]) == 2
    assert "trash_collection_v0 has no scripted policy" in capsys.readouterr().err


def test_envs_lists_every_environment_with_its_options(tmp_path):
    done = hmarl("envs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("trash_collection_v0", "basketball_defense_v1"):
        assert f"{name}:" in done.stdout
    assert "layout='room'" in done.stdout and "skill='normal'" in done.stdout
    assert "goto_trash_0" in done.stdout


def test_bench_lists_and_runs_a_benchmark(tmp_path, capsys):
    assert cli.main(["bench"]) == 0
    assert "env_throughput: Environment throughput" in capsys.readouterr().out
    assert cli.main(["bench", "nothing"]) == 2
    assert "name='nothing' is not valid" in capsys.readouterr().err
    ran = hmarl("bench", "env_throughput", "--help", cwd=tmp_path)
    assert ran.returncode == 0 and "usage:" in ran.stdout


BENCHMARKS = sorted(path.stem for path in (Path(__file__).resolve().parents[1] / "benchmarks").glob("[!_]*.py"))


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_explains_its_options(name, tmp_path):
    ran = hmarl("bench", name, "--help", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("usage:") and "options:" in ran.stdout


def test_train_reports_refused_input_in_one_line(tmp_path):
    done = hmarl("train", "dqn", "--env", "Pendulum-v1", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "hmarl train dqn: error: env='Pendulum-v1' has a continuous action space; DQN needs a discrete action "
        "space (for continuous control use sac_n)"
    )


def test_every_trainer_script_is_a_train_subcommand():
    import pkgutil

    import hmarl.trainers
    from hmarl.cli import TRAINERS

    scripts = {info.name for info in pkgutil.iter_modules(hmarl.trainers.__path__)}
    assert scripts == set(TRAINERS), f"trainer scripts {sorted(scripts)} vs hmarl train {sorted(TRAINERS)}"


def test_train_and_eval_flat_qmix(tmp_path):
    done = hmarl(
        "train",
        "qmix",
        "--total-steps",
        "800",
        "--num-envs",
        "8",
        "--learning-starts",
        "200",
        "--eval-every",
        "0",
        "--batch-size",
        "32",
        "--run-name",
        "flat",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    done = hmarl("eval", str(tmp_path / "checkpoints" / "flat"), "--episodes", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("qmix run flat: 2 greedy episodes")
