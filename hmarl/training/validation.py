"""Checks a run's configuration and paths before any work is done.

The rules go by field name, so every trainer's config (and every algorithm section a
config mixes in) is checked the same way without listing its fields: a field named
``lr`` or ending in ``_lr`` is a learning rate, one ending in ``hidden_sizes`` lists
layer widths, and so on. Algorithms keep the checks that need more than one field.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hmarl.core.config import is_section
from hmarl.core.selection import SelectionConfig, check_selection

#: Adam-type steps move each weight by about ``lr``; above 1 a step overshoots any
#: weight these networks hold, and above float32's range the optimiser itself fails.
MAX_LEARNING_RATE = 1.0


def _is_lr(name: str) -> bool:
    return name == "lr" or name.endswith("_lr")


def _check_number(name: str, value: Any, valid: Callable[[float], bool], what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value):
        raise ValueError(f"{name}={value!r} is not valid; it must be {what}")


#: (applies to the field name, check, what is valid); the first matching rule applies.
_RULES: list[tuple[Callable[[str], bool], Callable[[float], bool], str]] = [
    (
        _is_lr,
        lambda v: math.isfinite(v) and 0.0 < v <= MAX_LEARNING_RATE,
        f"a finite learning rate in (0, {MAX_LEARNING_RATE:g}]",
    ),
    (
        lambda n: n.endswith("max_grad_norm"),
        lambda v: math.isfinite(v) and v >= 0,
        "a finite norm >= 0 (0 disables clipping)",
    ),
    (lambda n: n == "gamma" or n.endswith("_gamma"), lambda v: 0.0 <= v <= 1.0, "a discount in [0, 1]"),
    (
        lambda n: n.startswith("epsilon_") or n.endswith("_epsilon") or n == "exploration_fraction",
        lambda v: 0.0 <= v <= 1.0,
        "a fraction in [0, 1]",
    ),
    (lambda n: n.endswith("batch_size") or n.endswith("buffer_size"), lambda v: v >= 1, "an integer >= 1"),
    (lambda n: n == "weight_decay", lambda v: math.isfinite(v) and v >= 0, "finite and >= 0"),
    (lambda n: n == "adam_eps", lambda v: math.isfinite(v) and v > 0, "finite and > 0"),
    (
        lambda n: n == "checkpoint_minutes",
        lambda v: math.isfinite(v) and v >= 0,
        "finite minutes >= 0 (0: none by time)",
    ),
]


def check_fields(config: Any) -> None:
    """Raise a ValueError naming the first field of ``config`` outside its valid range."""
    if isinstance(config, SelectionConfig):
        check_selection(config)
    for field in dataclasses.fields(config):
        name, value = field.name, getattr(config, field.name)
        if is_section(field):
            check_fields(value)
            continue
        if name.endswith("hidden_sizes") or name.endswith("_channels"):
            if not value or any(isinstance(width, bool) or not isinstance(width, int) or width < 1 for width in value):
                raise ValueError(f"{name}={tuple(value)!r} is not valid; every layer width must be an integer >= 1")
            continue
        for applies, valid, what in _RULES:
            if applies(name):
                _check_number(name, value, valid, what)
                break


def check_writable_dir(name: str, directory: str | Path) -> Path:
    """Create ``directory`` if needed and prove a file can be written there."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as error:
        raise ValueError(f"{name}={str(directory)!r} is not a writable directory: {error.strerror or error}") from None
    return path


def check_writable_file(name: str, file: str | Path) -> None:
    """The directory of ``file`` must be writable (the file itself is written later)."""
    path = Path(file)
    if path.is_dir():
        raise ValueError(f"{name}={str(file)!r} is a directory; give a file path")
    check_writable_dir(name, path.parent if str(path.parent) else ".")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{name}={str(file)!r} exists and cannot be overwritten")
