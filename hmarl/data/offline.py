"""Offline RL datasets in the D4RL layout, read from and written to HDF5 or NPZ files.

A dataset is six flat arrays over ``N`` transitions, the layout D4RL made standard:

=====================  ============  ===========================================
key                    shape         meaning
=====================  ============  ===========================================
``observations``       (N, obs_dim)  state the action was taken in
``actions``            (N, act_dim)  action taken
``rewards``            (N,)          reward received
``next_observations``  (N, obs_dim)  state reached (the true last state at episode end)
``terminals``          (N,)          the episode ended in a terminal state: no bootstrap
``timeouts``           (N,)          the episode was cut by a time limit: bootstrap
=====================  ============  ===========================================

Episodes are stored back to back; one ends where ``terminals | timeouts`` is set.
Metadata travels with the arrays (HDF5 root attributes; an NPZ ``metadata`` entry
holding JSON): at least ``env_id`` and ``quality``, and the random and expert
reference returns ``ref_min_score`` / ``ref_max_score`` (D4RL's names) from which
:func:`normalized_score` computes the usual 0 (random) to 100 (expert) scale.

Nothing here downloads anything: datasets are files on disk, usually written by
``hmarl.trainers.collect``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ARRAY_KEYS: tuple[str, ...] = (
    "observations",
    "actions",
    "rewards",
    "next_observations",
    "terminals",
    "timeouts",
)
QUALITIES: tuple[str, ...] = ("random", "medium", "replay", "expert")
HDF5_SUFFIXES: tuple[str, ...] = (".hdf5", ".h5")
NPZ_SUFFIXES: tuple[str, ...] = (".npz",)
REF_MIN_KEY = "ref_min_score"
REF_MAX_KEY = "ref_max_score"

_FLOAT_KEYS = ("observations", "actions", "rewards", "next_observations")
_FLAG_KEYS = ("terminals", "timeouts")


@dataclass
class OfflineDataset:
    """Validated transitions in the D4RL layout plus the metadata that describes them.

    Construction validates (see :func:`validate_arrays`); float arrays are stored as
    float32 and the two episode flags as bool.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrays = validate_arrays({key: getattr(self, key) for key in ARRAY_KEYS})
        for key, value in arrays.items():
            setattr(self, key, value)
        if not isinstance(self.metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, got {type(self.metadata).__name__}")
        self.metadata = dict(self.metadata)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def dones(self) -> np.ndarray:
        """Where an episode ends, by termination or by time limit."""
        return self.terminals | self.timeouts

    def arrays(self) -> dict[str, np.ndarray]:
        """The six arrays by their D4RL keys."""
        return {key: getattr(self, key) for key in ARRAY_KEYS}

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of every complete episode, in storage order.

        A trailing run of transitions with no end flag is an unfinished episode and
        is left out, so that its partial return does not bias the dataset's mean.
        """
        ends = np.flatnonzero(self.dones)
        if ends.size == 0:
            return np.zeros(0, dtype=np.float64)
        sums = np.cumsum(self.rewards, dtype=np.float64)[ends]
        return np.diff(sums, prepend=0.0)

    def normalized_score(self, returns: float | np.ndarray) -> float | np.ndarray:
        """``returns`` on this dataset's 0 (random) to 100 (expert) scale."""
        return normalized_score(returns, self.metadata)


def _as_array(key: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"dataset key {key!r} must be array-like: {error}") from error


def _check_shapes(arrays: Mapping[str, np.ndarray]) -> int:
    """Check the arrays' ranks and row counts (one row per transition); returns the count."""
    expected_ndim = {"observations": 2, "actions": 2, "next_observations": 2, "rewards": 1, "terminals": 1, "timeouts": 1}
    for key, ndim in expected_ndim.items():
        if arrays[key].ndim != ndim:
            layout = "(N, dim)" if ndim == 2 else "(N,)"
            raise ValueError(f"dataset key {key!r} must have shape {layout}, got shape {arrays[key].shape}")
    length = arrays["rewards"].shape[0]
    if length == 0:
        raise ValueError("dataset is empty: 'rewards' has no transitions")
    for key in ARRAY_KEYS:
        if arrays[key].shape[0] != length:
            raise ValueError(
                f"dataset key {key!r} has {arrays[key].shape[0]} rows but 'rewards' has "
                f"{length}; all keys must have one row per transition"
            )
    if arrays["next_observations"].shape != arrays["observations"].shape:
        raise ValueError(
            f"dataset key 'next_observations' has shape {arrays['next_observations'].shape} "
            f"but 'observations' has shape {arrays['observations'].shape}; they must match"
        )
    return length


def validate_arrays(data: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Check a mapping of D4RL arrays and return them as float32 / bool numpy arrays.

    Raises a ``ValueError`` that names the offending key for: missing keys, an empty
    dataset, wrong ranks, lengths that differ from ``rewards``, observation and
    next-observation shapes that differ, non-finite values (with the first bad row),
    and episode flags that are not 0/1. Raises ``TypeError`` for non-numeric arrays.
    Extra keys (D4RL files carry e.g. ``infos/*``) are ignored.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"dataset must be a mapping of arrays, got {type(data).__name__}")
    missing = [key for key in ARRAY_KEYS if key not in data]
    if missing:
        raise ValueError(f"dataset is missing required keys {missing}; a D4RL-layout dataset needs {list(ARRAY_KEYS)}")
    arrays = {key: _as_array(key, data[key]) for key in ARRAY_KEYS}
    for key, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise TypeError(f"dataset key {key!r} must be numeric or bool, got dtype {array.dtype}")

    length = _check_shapes(arrays)

    result: dict[str, np.ndarray] = {}
    for key in _FLOAT_KEYS:
        array = arrays[key]
        finite = np.isfinite(array) if array.dtype.kind == "f" else np.ones(array.shape, bool)
        if not finite.all():
            bad_row = int(np.flatnonzero(~finite.reshape(length, -1).all(axis=1))[0])
            kind = "NaN" if np.isnan(array).any() else "infinite"
            raise ValueError(f"dataset key {key!r} contains {kind} values (first at row {bad_row}); all values must be finite")
        result[key] = np.ascontiguousarray(array, dtype=np.float32)
    for key in _FLAG_KEYS:
        array = arrays[key]
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"dataset key {key!r} contains NaN values; flags must be 0 or 1")
        if not np.isin(array, (0, 1)).all():
            bad = array[~np.isin(array, (0, 1))][0]
            raise ValueError(f"dataset key {key!r} holds {bad!r}; episode flags must be 0 or 1")
        result[key] = np.ascontiguousarray(array, dtype=bool)
    return result


def _validate_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(f"metadata keys must be strings, got {key!r}")
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError(f"metadata[{key!r}] must be a str, int, float or bool, got {type(value).__name__}")
        clean[key] = value
    return clean


def _file_format(path: Path, argument: str = "path") -> str:
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in NPZ_SUFFIXES:
        return "npz"
    raise ValueError(
        f"{argument}={str(path)!r} has an unknown suffix {suffix!r}; use one of {list(HDF5_SUFFIXES + NPZ_SUFFIXES)}"
    )


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            "reading or writing HDF5 datasets needs h5py (pip install h5py); NPZ files need only numpy"
        ) from error
    return h5py


def save_dataset(path: str | Path, dataset: OfflineDataset) -> Path:
    """Write ``dataset`` to ``path`` (``.hdf5``/``.h5`` or ``.npz``) and return the path."""
    if not isinstance(dataset, OfflineDataset):
        raise TypeError(f"dataset must be an OfflineDataset, got {type(dataset).__name__}")
    path = Path(path)
    file_format = _file_format(path)
    metadata = _validate_metadata(dataset.metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "hdf5":
        h5py = _import_h5py()
        with h5py.File(path, "w") as file:
            for key, array in dataset.arrays().items():
                file.create_dataset(key, data=array, compression="gzip", compression_opts=4)
            file.attrs.update(metadata)
    else:
        arrays: dict[str, Any] = {"metadata": np.array(json.dumps(metadata)), **dataset.arrays()}
        np.savez_compressed(path, **arrays)
    return path


def load_dataset(path: str | Path) -> OfflineDataset:
    """Read and validate a D4RL-layout dataset from an HDF5 or NPZ file.

    Metadata comes from the HDF5 root attributes or the NPZ ``metadata`` JSON entry;
    a file without metadata (e.g. one written by other tools) loads with an empty dict.
    """
    path = Path(path)
    file_format = _file_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no such dataset file")
    metadata: dict[str, Any]
    if file_format == "hdf5":
        h5py = _import_h5py()
        with h5py.File(path, "r") as file:
            data = {key: file[key][()] for key in ARRAY_KEYS if key in file}
            metadata = {key: _attr_value(value) for key, value in file.attrs.items()}
    else:
        with np.load(path, allow_pickle=False) as file:
            data = {key: file[key] for key in ARRAY_KEYS if key in file.files}
            metadata = json.loads(str(file["metadata"])) if "metadata" in file.files else {}
    try:
        return OfflineDataset(**validate_arrays(data), metadata=metadata)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def normalized_score(returns: float | np.ndarray, metadata: Mapping[str, Any]) -> float | np.ndarray:
    """``100 * (returns - random) / (expert - random)`` with the references in ``metadata``.

    ``metadata`` is a dataset's metadata holding ``ref_min_score`` (mean return of a
    uniformly random policy) and ``ref_max_score`` (mean return of the expert policy).
    """
    missing = [key for key in (REF_MIN_KEY, REF_MAX_KEY) if key not in metadata]
    if missing:
        raise ValueError(
            f"metadata is missing {missing}; normalised scores need the random and expert "
            f"reference returns {REF_MIN_KEY!r} and {REF_MAX_KEY!r}"
        )
    low, high = float(metadata[REF_MIN_KEY]), float(metadata[REF_MAX_KEY])
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise ValueError(
            f"metadata has {REF_MIN_KEY}={low} and {REF_MAX_KEY}={high}; the expert reference "
            "must be finite and greater than the random one"
        )
    scaled = 100.0 * (np.asarray(returns, dtype=np.float64) - low) / (high - low)
    return float(scaled) if scaled.ndim == 0 else scaled
