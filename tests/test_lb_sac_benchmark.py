"""The LB-SAC benchmark script: its options, its dataset cache, its time-to-score rule,
and one tiny end-to-end run on a hand-made Pendulum dataset."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from hmarl.data import OfflineDataset, save_dataset
from hmarl.training import OfflineResult


@pytest.fixture(scope="module")
def lb_sac(benchmark_script) -> ModuleType:
    return benchmark_script("lb_sac")


def fake_run(lb_sac: ModuleType, name: str, curve: list[tuple[int, float, float]], untrained: float):
    evaluations = [(updates, {"normalized_score": score, "train_seconds": seconds}) for updates, seconds, score in curve]
    result = OfflineResult(name, curve[-1][0], curve[-1][1], curve[-1][1], 0.0, evaluations, None, None, None)
    return lb_sac.Run(name, 2, 256, 3e-4, result, lb_sac.Timing(100.0, untrained))


def test_scaled_down_sets_defaults_that_explicit_options_override(lb_sac: ModuleType) -> None:
    args = lb_sac.parse_args(["--scaled-down", "--time-budget", "60"])
    assert args.time_budget == 60.0
    assert args.hidden_sizes == lb_sac.SCALED_DOWN["hidden_sizes"]
    assert args.collect_steps == lb_sac.SCALED_DOWN["collect_steps"]
    assert lb_sac.parse_args([]).hidden_sizes == [256, 256, 256]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--time-budget", "0"], "--time-budget"),
        (["--target-fraction", "1.5"], "--target-fraction"),
        (["--lb-sac-batch", "0"], "--lb-sac-batch"),
        (["--hidden-sizes", "0"], "--hidden-sizes"),
    ],
)
def test_bad_options_name_the_flag(lb_sac: ModuleType, argv: list[str], flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        lb_sac.parse_args(argv)


def test_the_cache_folder_names_every_collection_setting(lb_sac: ModuleType, tmp_path: Path) -> None:
    args = lb_sac.parse_args(["--scaled-down", "--data-dir", str(tmp_path), "--collect-seed", "3"])
    folder = lb_sac.collection_dir(args)
    assert folder.parent == tmp_path
    assert folder.name == "HalfCheetah-v5-sac128x128-80000steps-100000transitions-seed3"


def tiny_dataset(n: int = 2_000) -> OfflineDataset:
    """Random Pendulum-shaped transitions with reference returns: enough to train and score on."""
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(n, 3)).astype(np.float32)
    return OfflineDataset(
        observations=observations,
        actions=rng.uniform(-2, 2, size=(n, 1)),
        rewards=rng.normal(size=n),
        next_observations=np.roll(observations, -1, axis=0),
        terminals=np.zeros(n),
        timeouts=np.arange(n) % 200 == 199,
        metadata={"env_id": "Pendulum-v1", "quality": "medium", "ref_min_score": -1200.0, "ref_max_score": -150.0},
    )


def test_the_ratio_uses_a_fraction_of_the_lower_final_score(lb_sac: ModuleType) -> None:
    args = lb_sac.parse_args(["--target-fraction", "0.5"])
    sac = fake_run(lb_sac, "sac_n", [(100, 10.0, 5.0), (200, 20.0, 30.0), (300, 30.0, 40.0)], 5.0)
    lb = fake_run(lb_sac, "lb_sac", [(10, 5.0, 25.0), (20, 10.0, 20.0)], 5.0)
    text = lb_sac.report([sac, lb], args, tiny_dataset(), "cpu")
    assert "time to normalised score 10.0 (0.5 x the lower final score 20.0)" in text
    assert "| sac_n | 20 | 200 |" in text
    assert "| lb_sac | 5 | 10 |" in text
    assert "wall-clock ratio SAC-N / LB-SAC = 4.00 (LB-SAC faster" in text
    assert "gradient-update ratio SAC-N / LB-SAC = 20.0" in text


def test_no_ratio_when_the_target_does_not_clear_the_untrained_score(lb_sac: ModuleType) -> None:
    args = lb_sac.parse_args([])
    sac = fake_run(lb_sac, "sac_n", [(100, 10.0, 30.0)], 7.0)
    lb = fake_run(lb_sac, "lb_sac", [(10, 10.0, 8.0)], 7.0)
    text = lb_sac.report([sac, lb], args, tiny_dataset(), "cpu")
    assert "no ratio: 0.8 x the lower final score 8.0 = 6.4 does not clear 7.0" in text
    assert "wall-clock ratio" not in text


def test_no_ratio_when_a_run_never_reaches_the_given_score(lb_sac: ModuleType) -> None:
    args = lb_sac.parse_args(["--target-score", "11"])
    sac = fake_run(lb_sac, "sac_n", [(100, 10.0, 12.0)], 7.0)
    lb = fake_run(lb_sac, "lb_sac", [(10, 10.0, 8.0)], 7.0)
    text = lb_sac.report([sac, lb], args, tiny_dataset(), "cpu")
    assert "| lb_sac | not reached | not reached |" in text
    assert "no ratio: lb_sac never reached 11.0" in text


def test_a_tiny_comparison_runs_end_to_end(lb_sac: ModuleType, tmp_path: Path) -> None:
    path = save_dataset(tmp_path / "Pendulum-v1-medium.npz", tiny_dataset())
    table = lb_sac.main(
        [
            "--dataset",
            str(path),
            "--sac-n-ensemble",
            "3",
            "--lb-sac-ensemble",
            "2",
            "--lb-sac-batch",
            "1024",
            "--hidden-sizes",
            "8",
            "--time-budget",
            "1",
            "--eval-seconds",
            "0.5",
            "--eval-episodes",
            "2",
            "--device",
            "cpu",
            "--out-dir",
            str(tmp_path / "runs"),
            "--target-score",
            "-1000",
        ]
    )
    assert "| sac_n | 3 | 256 | 3.00e-04 |" in table
    assert "| lb_sac | 2 | 1024 | 6.00e-04 |" in table
    assert "time to normalised score -1000.0 (--target-score)" in table
    assert "wall-clock ratio SAC-N / LB-SAC" in table
