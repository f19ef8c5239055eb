"""TensorBoard scalars under ``<log_dir>/<run_name>``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter


class RunLogger:
    """Writes groups of scalars (``train/loss``, ``eval/return``, ...) at an env step."""

    def __init__(self, log_dir: str | Path, run_name: str) -> None:
        self.directory = Path(log_dir) / run_name
        self.writer = SummaryWriter(str(self.directory))

    def scalars(self, group: str, values: Mapping[str, Any], step: int) -> None:
        for name, value in values.items():
            number = float(value)
            if math.isfinite(number):
                self.writer.add_scalar(f"{group}/{name}", number, step)

    def close(self) -> None:
        self.writer.close()
