"""Hyperparameter search over any hmarl trainer, on Ray Tune: BOIL (a GP over
hyperparameters and training length that reads whole learning curves) beside random
search, Optuna's TPE and ASHA. ``hmarl tune --help`` and ``docs/tune.md`` explain use.

Its libraries come with the ``tune`` extra (``pip install -e ".[tune]"``); importing
``hmarl`` or this package does not need them, the modules below it do.
"""

from __future__ import annotations

import importlib

#: The libraries of the tune extra, by import name.
EXTRA_MODULES = ("ray.tune", "botorch", "gpytorch", "optuna", "matplotlib", "yaml")
INSTALL_HINT = 'pip install -e ".[tune]" (from a source checkout) or pip install "hmarl[tune]"'


def missing_extra() -> list[str]:
    """The tune extra's libraries that do not import here."""
    missing = []
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name.split(".")[0])
    return missing


def require_extra() -> None:
    """Raise an ImportError that says how to install the tune extra if part of it is missing."""
    missing = missing_extra()
    if missing:
        raise ImportError(
            f"hmarl tune needs the tune extra, which is not installed (missing: {', '.join(missing)}); "
            f"install it with {INSTALL_HINT}"
        )
