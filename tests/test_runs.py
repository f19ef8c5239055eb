"""Runs that survive what happens to them: checks before training, interruption,
checkpoint integrity and size, resume and branch, the divergence guard.

The tests that stop or damage a run drive ``hmarl`` in a subprocess, as a user would.
"""

import hashlib
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hmarl.trainers import dqn as dqn_trainer
from hmarl.trainers import hqmix as hqmix_trainer

from hmarl.training import (
    CheckpointError,
    DivergenceError,
    RunInterrupted,
    load_checkpoint,
    open_checkpoint,
)
from hmarl.training.checkpoints import hash_file
from hmarl.training.guard import LOSS_GROWTH_POINTS, DivergenceGuard

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy", "PYTHONUNBUFFERED": "1"}


def hmarl(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hmarl.cli", *args],
        cwd=cwd,
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dqn_args(tmp_path: Path, run_name: str, total_steps: int = 2_000, checkpoint_every: int = 20) -> list[str]:
    return [
        "--env",
        "CartPole-v1",
        "--num-envs",
        "4",
        "--total-steps",
        str(total_steps),
        "--learning-starts",
        "200",
        "--batch-size",
        "32",
        "--hidden-sizes",
        "32",
        "--eval-every",
        "1000",
        "--eval-episodes",
        "2",
        "--checkpoint-every",
        str(checkpoint_every),
        "--keep-checkpoints",
        "0",
        "--run-name",
        run_name,
        "--log-dir",
        str(tmp_path / "runs"),
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        "--no-progress",
    ]


def assert_same_learning(a: dict, b: dict) -> None:
    assert a["loop"]["updates"] == b["loop"]["updates"]
    assert a["loop"]["evaluations"] == b["loop"]["evaluations"]
    for part in ("modules", "targets"):
        for name, tensor in a["agent"]["engine"][part].items():
            assert torch.equal(tensor, b["agent"]["engine"][part][name]), name


def files_and_hashes(directory: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(directory.iterdir())}


# --- checks before training ----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--hidden-sizes", "0"], r"hidden_sizes=\(0,\) is not valid; every layer width must be an integer >= 1"),
        (["--max-grad-norm", "-1"], r"max_grad_norm=-1.0 is not valid; it must be a finite norm >= 0"),
        (["--target-metric", "wins"], r"target_metric='wins' is not valid; env='CartPole-v1' reports \['return', "),
        (["--lr", "1e6"], r"lr=1000000.0 is not valid; it must be a finite learning rate in \(0, 1\]"),
        (["--lr", "1e39"], r"lr=1e\+39 is not valid"),
        (["--lr", "nan"], r"lr=nan is not valid"),
        (["--gamma", "1.5"], r"gamma=1.5 is not valid; it must be a discount in \[0, 1\]"),
        (["--env", "Pendulum-v1"], r"env='Pendulum-v1' has a continuous action space; DQN needs a discrete action"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        dqn_trainer.main(dqn_args(tmp_path, "bad") + options)
    assert not list((tmp_path / "checkpoints").glob("*/update_*.pt"))


def test_a_hierarchical_learner_needs_an_environment_with_options(tmp_path):
    with pytest.raises(ValueError, match="env='CartPole-v1' has no options interface"):
        hqmix_trainer.main(
            [
                "--env",
                "CartPole-v1",
                "--env-kwargs",
                "{}",
                "--no-progress",
                "--checkpoint-dir",
                str(tmp_path / "c"),
                "--log-dir",
                str(tmp_path / "r"),
            ]
        )


def test_unwritable_paths_are_refused_by_name(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for option in ("--checkpoint-dir", "--log-dir"):
        args = [*dqn_args(tmp_path, "paths"), option, str(blocker / "sub")]
        with pytest.raises(ValueError, match=f"{option[2:].replace('-', '_')}=.* is not a writable directory"):
            dqn_trainer.main(args)
    with pytest.raises(ValueError, match=r"gif=.* is not a writable directory"):
        hqmix_trainer.main(
            [
                "--gif",
                str(blocker / "episode.gif"),
                "--no-progress",
                "--checkpoint-dir",
                str(tmp_path / "c"),
                "--log-dir",
                str(tmp_path / "r"),
            ]
        )


def test_an_unwritable_directory_fails_in_the_first_second(tmp_path):
    """Measured against the interpreter's start and imports, which come before any check."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")

    def seconds(*command: str) -> tuple[float, subprocess.CompletedProcess]:
        started = time.perf_counter()
        done = subprocess.run(command, cwd=tmp_path, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=120)
        return time.perf_counter() - started, done

    imports = min(seconds(sys.executable, "-c", "import hmarl.cli, hmarl.trainers.hqmix")[0] for _ in range(2))
    elapsed, done = min(
        (
            seconds(sys.executable, "-m", "hmarl.cli", "train", "hqmix", "--checkpoint-dir", str(blocker / "sub"))
            for _ in range(2)
        ),
        key=lambda pair: pair[0],
    )
    assert done.returncode == 2, done.stderr
    assert "checkpoint_dir=" in done.stderr and "is not a writable directory" in done.stderr
    assert elapsed - imports < 1.0, f"failed after {elapsed:.2f}s, imports take {imports:.2f}s"


# --- interruption --------------------------------------------------------------------


def test_sigterm_leaves_a_checkpoint_that_resumes_exactly(tmp_path):
    args = [*dqn_args(tmp_path, "straight", total_steps=4000, checkpoint_every=0), "--checkpoint-replay"]
    straight = hmarl("train", "dqn", *args, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    stopped_args = [arg if arg != "straight" else "stopped" for arg in args]
    process = subprocess.Popen(
        [sys.executable, "-m", "hmarl.cli", "train", "dqn", *stopped_args, "--checkpoint-every", "50"],
        cwd=tmp_path,
        env=SUBPROCESS_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # A periodic checkpoint shows that training is under way (they do not change what is learned).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((tmp_path / "checkpoints" / "stopped").glob("update_*.pt")):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("SIGTERM:")]
    assert len(lines) == 1, stderr
    saved = Path(lines[0].rsplit("checkpoint: ", 1)[1])
    assert saved.is_file() and hash_file(saved).is_file()
    assert 0 < load_checkpoint(saved)["loop"]["global_step"] < 4_000
    resumed = hmarl("train", "dqn", "--resume", str(saved), "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_learning(
        load_checkpoint(tmp_path / "checkpoints" / "straight"), load_checkpoint(tmp_path / "checkpoints" / "stopped")
    )


def test_ctrl_c_finishes_the_update_and_saves(tmp_path, monkeypatch, capsys):
    from hmarl.agents.dqn import DQN

    original = DQN.update

    def update_then_ctrl_c(self):
        metrics = original(self)
        if self.engine.updates == 25:
            os.kill(os.getpid(), signal.SIGINT)
        return metrics

    monkeypatch.setattr(DQN, "update", update_then_ctrl_c)
    # The handler in force before the run (Python's default, or SIG_IGN where the test
    # process was started in the background) is the one the run must put back.
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RunInterrupted) as stopped:
        dqn_trainer.main(dqn_args(tmp_path, "ctrl_c", total_steps=2_000, checkpoint_every=0))
    assert stopped.value.code == 128 + signal.SIGINT
    # The round of two updates that the signal fell into is finished before saving.
    assert load_checkpoint(stopped.value.checkpoint)["loop"]["updates"] == 26
    assert "SIGINT: stopped after update 26 (step " in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before


def test_an_offline_run_stops_on_sigterm_with_a_checkpoint(tmp_path, monkeypatch):
    from hmarl.trainers import sac_n

    from hmarl.agents.sac_n import SACN
    from hmarl.data import OfflineDataset, save_dataset

    rng = np.random.default_rng(0)
    n = 400
    dataset = OfflineDataset(
        observations=rng.normal(size=(n, 3)).astype(np.float32),
        actions=rng.uniform(-2, 2, size=(n, 1)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        next_observations=rng.normal(size=(n, 3)).astype(np.float32),
        terminals=np.zeros(n, dtype=bool),
        timeouts=(np.arange(n) % 100 == 99),
        metadata={"env_id": "Pendulum-v1"},
    )
    path = save_dataset(tmp_path / "random.npz", dataset)
    original = SACN.update

    def update_then_sigterm(self):
        metrics = original(self)
        if self.critic_engine.updates == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return metrics

    monkeypatch.setattr(SACN, "update", update_then_sigterm)
    args = [
        "offline",
        "--dataset",
        str(path),
        "--hidden-sizes",
        "16",
        "--ensemble-size",
        "2",
        "--batch-size",
        "32",
        "--total-updates",
        "50",
        "--eval-every",
        "0",
        "--no-progress",
        "--run-name",
        "offline",
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        "--log-dir",
        str(tmp_path / "runs"),
    ]
    with pytest.raises(RunInterrupted) as stopped:
        sac_n.main(args)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert load_checkpoint(stopped.value.checkpoint)["loop"]["updates"] == 3
    monkeypatch.setattr(SACN, "update", original)
    assert sac_n.main(["offline", "--resume", str(stopped.value.checkpoint), "--no-progress"]).updates == 50


def test_checkpoints_are_also_written_by_wall_clock(tmp_path):
    args = [*dqn_args(tmp_path, "clock", total_steps=1200, checkpoint_every=0), "--checkpoint-minutes", "0.0005"]
    dqn_trainer.main(args)
    assert len(list((tmp_path / "checkpoints" / "clock").glob("update_*.pt"))) > 3
    with pytest.raises(ValueError, match=r"checkpoint_minutes=-1.0 is not valid"):
        dqn_trainer.main([*args, "--checkpoint-minutes", "-1"])


# --- integrity -----------------------------------------------------------------------


def test_a_damaged_checkpoint_is_named_and_a_run_directory_falls_back(tmp_path, capsys):
    dqn_trainer.main(dqn_args(tmp_path, "intact", total_steps=1_000, checkpoint_every=40))
    run = tmp_path / "checkpoints" / "intact"
    newest, older, oldest = sorted(run.glob("update_*.pt"))[::-1][:3]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x01
    newest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"checkpoint '{newest}' is damaged"):
        load_checkpoint(newest)
    capsys.readouterr()
    assert open_checkpoint(run)[0] == older
    assert f"falling back to checkpoint '{older}'" in capsys.readouterr().err
    # A truncated file fails in its reader; it is named too.
    older.write_bytes(older.read_bytes()[:1000])
    hash_file(older).unlink()
    with pytest.raises(CheckpointError, match=f"checkpoint '{older}' cannot be read"):
        load_checkpoint(older)
    assert open_checkpoint(run)[0] == oldest


def test_resume_from_a_run_whose_newest_checkpoint_is_corrupt(tmp_path):
    result = hmarl("train", "dqn", *dqn_args(tmp_path, "corrupt", total_steps=1_000, checkpoint_every=40), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "checkpoints" / "corrupt"
    newest, previous = sorted(run.glob("update_*.pt"))[::-1][:2]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    refused = hmarl("eval", str(newest), "--episodes", "1", cwd=tmp_path)
    assert refused.returncode == 2 and f"checkpoint '{newest}' is damaged" in refused.stderr
    resumed = hmarl("train", "dqn", "--resume", str(run), "--total-steps", "1200", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"falling back to checkpoint '{previous}'" in resumed.stderr
    branch = load_checkpoint(tmp_path / "checkpoints" / "corrupt_branch1")
    assert branch["parent"]["checkpoint"] == str(previous.resolve())


def test_checkpoints_leave_the_replay_out_unless_asked(tmp_path):
    plain = dqn_trainer.main(dqn_args(tmp_path, "plain", total_steps=600, checkpoint_every=0))
    full = dqn_trainer.main([*dqn_args(tmp_path, "full", total_steps=600, checkpoint_every=0), "--checkpoint-replay"])
    assert "replay" not in load_checkpoint(plain.checkpoint)["agent"]
    assert "replay" in load_checkpoint(full.checkpoint)["agent"]
    assert plain.checkpoint.stat().st_size * 5 < full.checkpoint.stat().st_size
    # Without replay the run still resumes: the networks continue, the replay refills.
    resumed = dqn_trainer.main(["--resume", str(plain.checkpoint), "--total-steps", "1000", "--no-progress"])
    assert resumed.env_steps == 1000 and resumed.updates > plain.updates


# --- resume and branch ---------------------------------------------------------------

FAILING_AT_HIGH_LR = textwrap.dedent(
    """
    import math
    import sys

    from hmarl.agents.dqn import DQN

    original = DQN.loss


    def loss(self, batch):
        rows, extras = original(self, batch)
        if self.engine.optimizer.param_groups[0]["lr"] > 5e-4 and self.engine.updates >= 30:
            rows.values = rows.values * math.inf
        return rows, extras


    DQN.loss = loss
    from hmarl.cli import main

    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_branch_with_a_lower_learning_rate_goes_past_the_failed_update(tmp_path):
    script = tmp_path / "failing_at_high_lr.py"
    script.write_text(FAILING_AT_HIGH_LR)

    def train(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), "train", "dqn", *args],
            cwd=tmp_path,
            env=SUBPROCESS_ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )

    failed = train(*dqn_args(tmp_path, "source", total_steps=1_200, checkpoint_every=10), "--lr", "1e-3")
    assert failed.returncode == 1, failed.stderr
    assert "non-finite loss" in failed.stderr and "update_000000030.pt" in failed.stderr
    source = tmp_path / "checkpoints" / "source"
    before = files_and_hashes(source)

    refused = train("--resume", str(source), "--hidden-sizes", "64")
    assert refused.returncode == 2
    assert "cannot change on --resume: hidden_sizes ((32,) in the run, (64,) given)" in refused.stderr

    branched = train("--resume", str(source), "--lr", "1e-4")
    assert branched.returncode == 0, branched.stderr
    branch = load_checkpoint(tmp_path / "checkpoints" / "source_branch1")
    assert branch["loop"]["updates"] > 30 and branch["loop"]["global_step"] == 1_200
    assert branch["config"]["lr"] == 1e-4 and branch["config"]["run_name"] == "source_branch1"
    assert branch["parent"]["run_name"] == "source" and branch["parent"]["updates"] == 30
    assert branch["parent"]["changed"] == {"lr": [1e-3, 1e-4]}
    assert files_and_hashes(source) == before
    assert (tmp_path / "runs" / "source_branch1").is_dir()


def test_a_resume_names_what_changed_and_refuses_writing_into_the_source(tmp_path):
    dqn_trainer.main(dqn_args(tmp_path, "origin", total_steps=600, checkpoint_every=0))
    run = str(tmp_path / "checkpoints" / "origin")
    refused = r"cannot change on --resume: env \('CartPole-v1' in the run, 'Acrobot-v1' given\)"
    with pytest.raises(ValueError, match=refused):
        dqn_trainer.main(["--resume", run, "--env", "Acrobot-v1"])
    with pytest.raises(ValueError, match="never writes into the source run"):
        dqn_trainer.main(["--resume", run, "--total-steps", "800", "--run-name", "origin"])
    # An option given with the run's own value changes nothing: the run continues as itself.
    assert dqn_trainer.main(["--resume", run, "--lr", "0.001", "--no-progress"]).run_name == "origin"
    assert not (tmp_path / "checkpoints" / "origin_branch1").exists()


# --- the divergence guard ------------------------------------------------------------


def test_the_guard_reports_values_beyond_the_reward_bound_and_a_growing_loss():
    guard = DivergenceGuard(gamma=0.9)
    guard.observe_rewards(np.array([[1.0, 1.0]]))
    assert guard.value_bound == pytest.approx(20.0)
    assert guard.check({"q_mean": 150.0, "loss": 1.0}, 10) is None
    assert "q_mean=250 at update 20 is beyond 10x the bound 20" in guard.check({"q_mean": 250.0}, 20)
    losses = [0.5 * 3**k for k in range(LOSS_GROWTH_POINTS + 1)]
    messages = [guard.check({"loss": loss}, k) for k, loss in enumerate(losses)]
    assert messages[:-1] == [None] * LOSS_GROWTH_POINTS
    assert messages[-1].startswith("loss=121.5 at update 5 grew at each of the last")
    # An actor's loss may be negative and grow without diverging; an alias is judged once.
    guard = DivergenceGuard(gamma=0.9)
    for k, loss in enumerate(losses):
        assert guard.check({"actor_loss": loss - 1.0, "critic_loss": 1.0, "loss": 1.0}, k) is None
    messages = [guard.check({"high_loss": loss, "loss": loss}, k) for k, loss in enumerate(losses)]
    assert messages[-1].startswith("high_loss=121.5")


def test_divergence_warns_or_stops_the_run_with_a_checkpoint(tmp_path, monkeypatch, capsys):
    from hmarl.agents.dqn import DQN

    original = DQN.loss

    def inflated(self, batch):
        loss, extras = original(self, batch)
        return loss, {**extras, "q_mean": extras["q_mean"] + (1e6 if self.engine.updates >= 20 else 0.0)}

    monkeypatch.setattr(DQN, "loss", inflated)
    args = [*dqn_args(tmp_path, "diverging", total_steps=800, checkpoint_every=0), "--log-every", "10"]
    dqn_trainer.main(args)
    assert "warning: q_mean=1e+06 at update 30 is beyond 10x the bound" in capsys.readouterr().err
    with pytest.raises(DivergenceError, match=r"stopped \(--stop-on-divergence\), checkpoint: .*update_000000030\.pt"):
        dqn_trainer.main([*args, "--stop-on-divergence", "--run-name", "stopped"])
    assert load_checkpoint(tmp_path / "checkpoints" / "stopped")["loop"]["updates"] == 30


# --- the crash loop ------------------------------------------------------------------


@pytest.mark.slow
def test_twenty_kills_and_resumes_end_where_an_uninterrupted_run_ends(tmp_path):
    args = dqn_args(tmp_path, "straight", total_steps=60_000, checkpoint_every=25)
    args[args.index("--keep-checkpoints") + 1] = "2"
    args += ["--checkpoint-replay"]
    assert hmarl("train", "dqn", *args, cwd=tmp_path, timeout=1800).returncode == 0
    crashing = [a if a != "straight" else "crashing" for a in args]
    run = tmp_path / "checkpoints" / "crashing"
    rng = random.Random(0)

    def newest() -> str:
        return max((path.name for path in run.glob("update_*.pt")), default="")

    kills = 0
    for _ in range(20):
        before = newest()
        command = ["--resume", str(run), "--no-progress"] if before else crashing
        process = subprocess.Popen(
            [sys.executable, "-m", "hmarl.cli", "train", "dqn", *command],
            cwd=tmp_path,
            env=SUBPROCESS_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Each kill lands at a random moment after the process has trained far enough to
        # write a checkpoint of its own (however slow the machine is to start it), so
        # every round makes progress and some kills fall in the middle of a write.
        deadline = time.monotonic() + 600
        while newest() == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.0))
        kills += process.poll() is None
        process.kill()
        process.wait()
    assert kills >= 15, f"only {kills} of 20 processes were still running when killed"
    final = hmarl("train", "dqn", "--resume", str(run), "--no-progress", cwd=tmp_path, timeout=1800)
    assert final.returncode == 0, final.stderr
    assert_same_learning(load_checkpoint(tmp_path / "checkpoints" / "straight"), load_checkpoint(run))
    assert math.isfinite(load_checkpoint(run)["loop"]["wall_seconds"])
