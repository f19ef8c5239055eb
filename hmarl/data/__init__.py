"""Offline datasets: the D4RL layout on disk, validation and normalised scores."""

from hmarl.data.offline import (
    ARRAY_KEYS,
    QUALITIES,
    OfflineDataset,
    load_dataset,
    normalized_score,
    save_dataset,
    validate_arrays,
)

__all__ = [
    "ARRAY_KEYS",
    "QUALITIES",
    "OfflineDataset",
    "load_dataset",
    "normalized_score",
    "save_dataset",
    "validate_arrays",
]
