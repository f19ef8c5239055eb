"""SAC-N through its trainers: online learning, dataset collection, offline learning, resume.

The fast tests use small networks on Pendulum-v1; the slow ones (``-m slow``) are
the issue's learning claims: online SAC at the trainer's defaults solves Pendulum-v1,
and LB-SAC (batch 10,000, sqrt rule) learns offline from a collected medium dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hmarl.data import load_dataset
from hmarl.trainers import collect, sac_n
from hmarl.training import TrainResult, load_checkpoint

SMALL_ONLINE = [
    "--hidden-sizes",
    "64",
    "64",
    "--batch-size",
    "128",
    "--lr",
    "1e-3",
    "--learning-starts",
    "500",
    "--random-steps",
    "500",
    "--no-progress",
]


def run_args(tmp_path: Path, name: str) -> list[str]:
    return ["--run-name", name, "--log-dir", str(tmp_path / "runs"), "--checkpoint-dir", str(tmp_path / "ckpt")]


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    """One short online run, shared: its result, and its checkpoints as policy snapshots."""
    tmp_path = tmp_path_factory.mktemp("pendulum_run")
    result = sac_n.main(
        [
            "online",
            *SMALL_ONLINE,
            *run_args(tmp_path, "online"),
            "--total-steps",
            "7000",
            "--eval-every",
            "7000",
            "--eval-episodes",
            "5",
            "--checkpoint-every",
            "900",
            "--keep-checkpoints",
            "0",
            "--checkpoint-replay",
        ]
    )
    return result, result.checkpoint.parent


@pytest.fixture(scope="module")
def pendulum_datasets(pendulum_run: tuple[TrainResult, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp_path = tmp_path_factory.mktemp("pendulum_datasets")
    return collect.main(
        [
            "--env",
            "Pendulum-v1",
            "--policy-run",
            str(pendulum_run[1]),
            "--num-transitions",
            "1000",
            "--reference-episodes",
            "10",
            "--collect-envs",
            "5",
            "--out-dir",
            str(tmp_path),
            "--format",
            "npz",
            "--no-progress",
        ]
    )


def test_online_sac_learns_pendulum(pendulum_run: tuple[TrainResult, Path]) -> None:
    # Random actions score about -1200; the swing-up is learned by about -400.
    assert pendulum_run[0].final_eval["return"] >= -400.0


def test_collector_writes_every_quality_with_references(pendulum_datasets: dict[str, Path]) -> None:
    paths = pendulum_datasets
    assert sorted(paths) == ["expert", "medium", "random", "replay"]
    datasets = {quality: load_dataset(path) for quality, path in paths.items()}
    references = {(d.metadata["ref_min_score"], d.metadata["ref_max_score"]) for d in datasets.values()}
    assert len(references) == 1
    ref_min, ref_max = references.pop()
    assert ref_max > ref_min
    for quality, dataset in datasets.items():
        assert dataset.metadata["quality"] == quality
        assert dataset.metadata["env_id"] == "Pendulum-v1"
        assert dataset.dones[-1], "every dataset ends at an episode boundary"
        returns = dataset.episode_returns()
        assert dataset.metadata["num_episodes"] == returns.size
        assert dataset.metadata["mean_return"] == pytest.approx(returns.mean())
        assert np.abs(dataset.actions).max() <= 2.0
    for quality in ("random", "medium", "expert"):
        assert len(datasets[quality]) >= 1000
        assert datasets[quality].timeouts.sum() == datasets[quality].metadata["num_episodes"]
    # The replay is the run's own experience up to the medium policy, in order.
    replay, medium = datasets["replay"], datasets["medium"]
    assert len(replay) == medium.metadata["policy_env_steps"]
    policy_returns = [datasets[quality].metadata["policy_return"] for quality in ("random", "medium", "expert")]
    assert policy_returns == sorted(policy_returns) and policy_returns[0] == ref_min and policy_returns[2] == ref_max
    assert datasets["expert"].normalized_score(datasets["expert"].metadata["mean_return"]) > 50.0
    np.testing.assert_array_equal(replay.observations[1:200], replay.next_observations[:199])


def test_offline_training_resumes_exactly(tmp_path: Path, pendulum_datasets: dict[str, Path]) -> None:
    data = pendulum_datasets["medium"]
    common = [
        "offline",
        "--dataset",
        str(data),
        "--hidden-sizes",
        "32",
        "32",
        "--ensemble-size",
        "3",
        "--batch-size",
        "64",
        "--eval-every",
        "4",
        "--eval-episodes",
        "2",
        "--no-progress",
        "--total-updates",
        "8",
    ]
    straight = sac_n.main([*common, *run_args(tmp_path, "straight")])
    halfway = sac_n.main(
        [
            *common,
            *run_args(tmp_path, "halves"),
            "--checkpoint-every",
            "4",
            "--keep-checkpoints",
            "0",
            "--total-updates",
            "8",
        ]
    )
    first_half = tmp_path / "ckpt" / "halves" / "update_000000004.pt"
    first_half.with_name("update_000000008.pt").unlink()
    resumed = sac_n.main(["offline", "--resume", str(first_half), "--no-progress"])
    assert [m["return"] for _, m in resumed.evaluations] == [m["return"] for _, m in straight.evaluations]
    assert halfway.final_eval["return"] == straight.final_eval["return"]
    expected = load_checkpoint(straight.checkpoint)["agent"]["critic"]["modules"]
    actual = load_checkpoint(resumed.checkpoint)["agent"]["critic"]["modules"]
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=0)
    assert "normalized_score" in straight.final_eval


def test_online_training_resumes_exactly(tmp_path: Path) -> None:
    common = [
        "online",
        *SMALL_ONLINE,
        "--hidden-sizes",
        "16",
        "--batch-size",
        "32",
        "--learning-starts",
        "100",
        "--random-steps",
        "100",
        "--total-steps",
        "300",
        "--eval-every",
        "300",
        "--eval-episodes",
        "2",
    ]
    straight = sac_n.main([*common, *run_args(tmp_path, "straight")])
    sac_n.main(
        [*common, *run_args(tmp_path, "halves"), "--checkpoint-every", "100", "--keep-checkpoints", "0", "--checkpoint-replay"]
    )
    resumed = sac_n.main(["online", "--resume", str(tmp_path / "ckpt" / "halves" / "update_000000100.pt"), "--no-progress"])
    assert resumed.final_eval == straight.final_eval
    expected = load_checkpoint(straight.checkpoint)["agent"]["actor"]["modules"]
    actual = load_checkpoint(resumed.checkpoint)["agent"]["actor"]["modules"]
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=0)


def test_cli_modes_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="unknown mode 'sideways'"):
        sac_n.main(["sideways"])
    with pytest.raises(SystemExit) as exit_info:
        sac_n.main(["--help"])
    assert exit_info.value.code == 0
    with pytest.raises(ValueError, match="dataset is required"):
        sac_n.main(["offline", "--no-progress", *run_args(tmp_path, "none")])
    with pytest.raises(ValueError, match="SAC-N needs a bounded Box action space"):
        sac_n.main(["online", "--env", "CartPole-v1", "--no-progress", *run_args(tmp_path, "cartpole")])
    with pytest.raises(ValueError, match="medium_fraction must be in"):
        collect.main(["--medium-fraction", "1.5", "--no-progress"])


@pytest.mark.slow
def test_online_sac_solves_pendulum_at_the_trainer_defaults(tmp_path: Path) -> None:
    result = sac_n.main(["online", "--no-progress", *run_args(tmp_path, "online_default")])
    assert result.final_eval["return"] >= -200.0


@pytest.mark.slow
def test_lb_sac_offline_reaches_the_medium_dataset_return(tmp_path: Path) -> None:
    paths = collect.main(
        [
            *SMALL_ONLINE,
            *run_args(tmp_path, "collect"),
            "--total-steps",
            "6000",
            "--eval-every",
            "0",
            "--snapshots",
            "12",
            "--num-transitions",
            "20000",
            "--qualities",
            "medium",
            "--out-dir",
            str(tmp_path / "data"),
        ]
    )
    dataset = load_dataset(paths["medium"])
    result = sac_n.main(
        [
            "offline",
            "--dataset",
            str(paths["medium"]),
            "--batch-size",
            "10000",
            "--lr-scaling",
            "sqrt",
            "--ensemble-size",
            "2",
            "--hidden-sizes",
            "32",
            "32",
            "--total-updates",
            "6000",
            "--eval-every",
            "500",
            "--no-progress",
            *run_args(tmp_path, "lb_sac"),
        ]
    )
    assert result.final_eval["return"] >= dataset.metadata["mean_return"]
