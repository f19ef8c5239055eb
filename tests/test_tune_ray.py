"""Studies on a real Ray cluster of two one-core worker nodes, started here and stopped
after: a BOIL study spread over both nodes, failing trials recorded while the study goes
on, and a study whose driver is killed and then resumed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmarl.tune import missing_extra

MISSING = missing_extra()
if MISSING:
    pytest.skip(f"the tune extra is not installed (missing {MISSING}): pip install -e '.[tune]'", allow_module_level=True)

from hmarl.tune.space import build_space  # noqa: E402
from hmarl.tune.study import Study, run_study  # noqa: E402
from hmarl.trainers import dqn  # noqa: E402

FLAKY = Path(__file__).parent / "tune_trainers" / "flaky_dqn.py"
#: A DQN run of a few seconds: 4 copies, evaluations of 2 episodes every 500 steps.
TINY = [
    "--num-envs",
    "4",
    "--learning-starts",
    "200",
    "--eval-every",
    "500",
    "--eval-episodes",
    "2",
    "--device",
    "cpu",
    "--hidden-sizes",
    "32",
    "32",
]


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    nodes = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 1})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def _study(tmp_path: Path, name: str, searcher: str, algorithm: str = "dqn", max_trials: int = 4) -> Study:
    space = build_space(
        dqn.Config,
        {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
        {"field": "total_steps", "low": 500, "high": 1500},
        TINY,
    )
    return Study(
        algorithm=algorithm, space=space, searcher=searcher, max_trials=max_trials, seed=3, name=name, storage=str(tmp_path)
    )


def test_boil_study_on_a_two_worker_cluster(cluster, tmp_path):
    study = _study(tmp_path, "boil", "boil", max_trials=5)
    rows = run_study(study, address=cluster.address, progress=False)
    assert len(rows) == 5 and all(row.status == "done" for row in rows), rows
    assert len({row.trial_id for row in rows}) == 5
    for row in rows:
        steps = row.values["total_steps"]
        assert 500 <= steps <= 1500 and steps % 500 == 0
        assert row.evaluations == steps // 500
        assert 0 <= row.score <= 500
    # The first 3 (3 per dimension of x) run to the longest length.
    first = sorted(rows, key=lambda row: row.trial_id)
    assert sum(row.values["total_steps"] == 1500 for row in first) >= 3
    nodes = set()
    for trial in (study.directory).glob("run_trial_*"):
        for line in (trial / "result.json").read_text().splitlines():
            nodes.add(json.loads(line)["node"])
    assert len(nodes) == 2, f"trials ran on {len(nodes)} node(s)"
    table = list(csv.DictReader((study.directory / "trials.csv").open()))
    assert len(table) == 5 and {"lr", "total_steps", "score", "status"} <= set(table[0])


def test_failing_trials_are_recorded_and_the_study_goes_on(cluster, tmp_path):
    study = _study(tmp_path, "flaky", "random", algorithm=str(FLAKY), max_trials=6)
    rows = run_study(study, address=cluster.address, progress=False)
    assert len(rows) == 6
    failed = [row for row in rows if row.status == "failed"]
    done = [row for row in rows if row.status == "done"]
    assert failed and done, [(row.values, row.status) for row in rows]
    assert all(row.values["lr"] > 1e-3 for row in failed)
    assert all(row.values["lr"] <= 1e-3 and row.evaluations >= 1 for row in done)
    assert all("flaky trainer" in row.error for row in failed), [row.error for row in failed]


def _trial_states(directory: Path) -> dict[str, str]:
    """Trial id -> status in the newest saved experiment state."""
    states = sorted(directory.glob("experiment_state-*.json"))
    if not states:
        return {}
    data = json.loads(states[-1].read_text())
    statuses = {}
    for trial_json, _ in data["trial_data"]:
        trial = json.loads(trial_json)
        statuses[trial["trial_id"]] = trial["status"]
    return statuses


def test_killed_study_resumes_without_losing_or_repeating_trials(cluster, tmp_path):
    command = [
        sys.executable,
        "-m",
        "hmarl.tune",
        "dqn",
        "--param",
        "lr=1e-4:1e-2:log",
        "--length",
        "total_steps=500:1500",
        "--searcher",
        "boil",
        "--max-trials",
        "6",
        "--seed",
        "1",
        "--name",
        "crash",
        "--storage",
        str(tmp_path),
        "--address",
        cluster.address,
        "--no-progress",
        "--",
        *TINY,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    directory = tmp_path / "crash"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if sum(status == "TERMINATED" for status in _trial_states(directory).values()) >= 2:
                break
            assert driver.poll() is None, "the study ended before it could be killed"
            time.sleep(0.5)
        else:
            pytest.fail("two trials did not finish within 120 s")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    before = _trial_states(directory)
    finished = {trial for trial, status in before.items() if status == "TERMINATED"}
    reports = {trial: _reports(directory, trial) for trial in finished}
    assert len(finished) >= 2

    resumed = subprocess.run(
        [sys.executable, "-m", "hmarl.tune", "--resume", str(directory), "--address", cluster.address, "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    table = list(csv.DictReader((directory / "trials.csv").open()))
    ids = [row["trial_id"] for row in table]
    assert len(ids) == 6 and len(set(ids)) == 6, ids
    assert all(row["status"] == "done" for row in table), table
    assert (directory / "best_so_far.png").stat().st_size > 0
    # Nothing finished before the kill was run again: its reports are as they were.
    for trial in finished:
        assert trial in ids
        assert _reports(directory, trial) == reports[trial]


def _reports(directory: Path, trial_id: str) -> list[float]:
    (trial_dir,) = directory.glob(f"run_trial_{trial_id}_*")
    return [json.loads(line)["objective"] for line in (trial_dir / "result.json").read_text().splitlines()]
