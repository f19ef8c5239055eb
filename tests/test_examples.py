"""Every script in examples/ runs as a reader would run it (small arguments), and prints
what its docstring promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_dirs(tmp_path: Path) -> list[str]:
    return ["--log-dir", str(tmp_path / "runs"), "--checkpoint-dir", str(tmp_path / "checkpoints")]


def test_every_example_is_tested():
    tested = {"pettingzoo_random.py", "torchrl_trash.py", "custom_hook.py", "trainer_as_function.py", "new_high_level.py"}
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_pettingzoo_random_plays_both_environments(tmp_path):
    out = run_example("pettingzoo_random.py", "--episodes", "2", "--seed", "3", cwd=tmp_path)
    lines = out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["trash_collection_v0", "basketball_defense_v1"]
    for line in lines:
        match = re.search(r"2 episodes, mean team return (-?[\d.]+), mean length ([\d.]+)$", line)
        assert match, line
        assert float(match.group(2)) >= 1
    # room's episodes run to their step limit of 100 unless every trash is placed
    assert float(re.search(r"mean length ([\d.]+)", lines[0]).group(1)) <= 100


def test_pettingzoo_random_refuses_no_episodes(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "pettingzoo_random.py"), "--episodes", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--episodes must be at least 1" in done.stderr


def test_torchrl_rollout_respects_the_masks(tmp_path):
    pytest.importorskip("torchrl")
    out = run_example("torchrl_trash.py", "--steps", "20", cwd=tmp_path)
    assert "rollout batch size: (20,)" in out
    assert re.search(r"^action_mask: \(20, 2, \d+\)$", out, re.MULTILINE), out
    assert re.search(r"^observation: \(20, 2, \d+\)$", out, re.MULTILINE), out
    assert "every action allowed by its mask: True" in out


def test_custom_hook_sees_every_update(tmp_path):
    out = run_example("custom_hook.py", "--total-steps", "1200", *run_dirs(tmp_path), cwd=tmp_path)
    match = re.search(r"updates seen by the hook: (\d+) \(the run made (\d+)\)", out)
    assert match, out
    assert int(match.group(1)) == int(match.group(2)) > 0
    mean, largest = map(float, re.search(r"gradient norm: mean ([\d.]+), largest ([\d.]+)", out).groups())
    assert 0 < mean <= largest


def test_trainer_as_function_prints_its_curve(tmp_path):
    out = run_example("trainer_as_function.py", "--total-steps", "2000", *run_dirs(tmp_path), cwd=tmp_path)
    assert re.search(r"^run as_function: 2000 steps, \d+ updates", out, re.MULTILINE), out
    curve = re.findall(r"^\s*(\d+)\s+(-?[\d.]+)$", out, re.MULTILINE)
    assert [int(step) for step, _ in curve] == [1000, 2000]
    assert all(float(value) >= 1 for _, value in curve)  # CartPole pays 1 per step survived


def test_new_high_level_trains_through_the_trainers_command_line(tmp_path):
    out = run_example(
        "new_high_level.py",
        "--total-steps",
        "800",
        "--eval-every",
        "0",
        "--no-progress",
        "--checkpoint-every",
        "0",
        *run_dirs(tmp_path),
        cwd=tmp_path,
    )
    summary = re.search(r"^summary run=(\S+) env_steps=(\d+)", out, re.MULTILINE)
    assert summary, out
    assert int(summary.group(2)) >= 800
