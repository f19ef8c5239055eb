"""D4RL-layout datasets: round trips through HDF5 and NPZ, validation errors, scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmarl.data import ARRAY_KEYS, OfflineDataset, load_dataset, normalized_score, save_dataset

h5py = pytest.importorskip("h5py")


def make_arrays(length: int = 10, obs_dim: int = 3, action_dim: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    timeouts = np.zeros(length, dtype=bool)
    terminals = np.zeros(length, dtype=bool)
    timeouts[3] = True
    terminals[7] = True
    return {
        "observations": rng.normal(size=(length, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(length, action_dim)).astype(np.float32),
        "rewards": np.arange(length, dtype=np.float32),
        "next_observations": rng.normal(size=(length, obs_dim)).astype(np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
    }


METADATA = {"env_id": "Pendulum-v1", "quality": "medium", "ref_min_score": -1200.0, "ref_max_score": -150.0}


@pytest.mark.parametrize("suffix", [".hdf5", ".h5", ".npz"])
def test_round_trip_keeps_arrays_and_metadata(tmp_path: Path, suffix: str) -> None:
    dataset = OfflineDataset(**make_arrays(), metadata=METADATA)
    path = save_dataset(tmp_path / f"data{suffix}", dataset)
    loaded = load_dataset(path)
    for key in ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(loaded, key), getattr(dataset, key))
    assert loaded.metadata == METADATA
    assert loaded.terminals.dtype == np.bool_ and loaded.observations.dtype == np.float32
    assert (len(loaded), loaded.obs_dim, loaded.action_dim) == (10, 3, 2)


def test_reads_a_d4rl_style_hdf5_file_with_extra_keys_and_float_flags(tmp_path: Path) -> None:
    arrays = make_arrays()
    path = tmp_path / "d4rl.hdf5"
    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            file[key] = value.astype(np.float32) if key in ("terminals", "timeouts") else value
        file["infos/qpos"] = np.zeros((10, 4))
    loaded = load_dataset(path)
    assert loaded.metadata == {}
    np.testing.assert_array_equal(loaded.terminals, arrays["terminals"])


def test_episode_returns_split_at_terminals_and_timeouts_and_drop_the_unfinished_tail() -> None:
    dataset = OfflineDataset(**make_arrays())
    # rewards 0..9; episodes end at rows 3 and 7; rows 8-9 are unfinished
    np.testing.assert_allclose(dataset.episode_returns(), [0 + 1 + 2 + 3, 4 + 5 + 6 + 7])


def test_normalized_score_uses_the_reference_returns() -> None:
    assert normalized_score(-1200.0, METADATA) == pytest.approx(0.0)
    assert normalized_score(-150.0, METADATA) == pytest.approx(100.0)
    np.testing.assert_allclose(normalized_score(np.array([-675.0]), METADATA), [50.0])
    dataset = OfflineDataset(**make_arrays(), metadata=METADATA)
    assert dataset.normalized_score(-675.0) == pytest.approx(50.0)


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"ref_min_score": 0.0}, "ref_max_score"),
        ({"ref_min_score": 1.0, "ref_max_score": 1.0}, "greater than the random"),
    ],
)
def test_normalized_score_errors(metadata: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalized_score(0.0, metadata)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    arrays = make_arrays()
    del arrays["timeouts"], arrays["next_observations"]
    path = tmp_path / "partial.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"missing required keys \['next_observations', 'timeouts'\]"):
        load_dataset(path)


def test_mismatched_lengths_name_the_key(tmp_path: Path) -> None:
    arrays = make_arrays()
    arrays["actions"] = arrays["actions"][:-1]
    path = tmp_path / "short.hdf5"
    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            file[key] = value
    with pytest.raises(ValueError, match=r"'actions' has 9 rows but 'rewards' has 10"):
        load_dataset(path)


@pytest.mark.parametrize("key", ["observations", "rewards", "next_observations", "actions"])
def test_nan_is_reported_with_key_and_row(key: str) -> None:
    arrays = make_arrays()
    arrays[key] = arrays[key].copy()
    arrays[key][5] = np.nan
    with pytest.raises(ValueError, match=rf"{key!r} contains NaN values \(first at row 5\)"):
        OfflineDataset(**arrays)


@pytest.mark.parametrize(
    "key, value, error, message",
    [
        ("rewards", np.zeros((10, 1)), ValueError, r"'rewards' must have shape \(N,\)"),
        ("observations", np.zeros(10), ValueError, r"'observations' must have shape \(N, dim\)"),
        ("next_observations", np.zeros((10, 4)), ValueError, "'next_observations' has shape"),
        ("terminals", np.full(10, 2), ValueError, "episode flags must be 0 or 1"),
        ("timeouts", np.full(10, np.nan), ValueError, "'timeouts' contains NaN"),
        ("rewards", np.array(["a"] * 10), TypeError, "'rewards' must be numeric"),
        ("observations", np.full((10, 3), np.inf), ValueError, "infinite"),
    ],
)
def test_malformed_arrays_are_rejected(key: str, value: np.ndarray, error: type, message: str) -> None:
    arrays = make_arrays()
    arrays[key] = value
    with pytest.raises(error, match=message):
        OfflineDataset(**arrays)


def test_empty_dataset_is_rejected() -> None:
    arrays = {key: value[:0] for key, value in make_arrays().items()}
    with pytest.raises(ValueError, match="empty"):
        OfflineDataset(**arrays)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown suffix '.csv'; use one of"):
        load_dataset(tmp_path / "data.csv")
    with pytest.raises(FileNotFoundError, match="no such dataset file"):
        load_dataset(tmp_path / "absent.npz")


def test_metadata_values_must_be_scalars(tmp_path: Path) -> None:
    dataset = OfflineDataset(**make_arrays(), metadata={"env_id": ["not", "scalar"]})
    with pytest.raises(TypeError, match=r"metadata\['env_id'\] must be a str"):
        save_dataset(tmp_path / "data.npz", dataset)
