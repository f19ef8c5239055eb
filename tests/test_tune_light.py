"""`hmarl tune` without the tune extra: hmarl imports without it, and the command says how
to install it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hmarl.tune
from hmarl import cli


def test_hmarl_and_its_tune_package_import_without_the_extras_libraries():
    code = (
        "import sys, hmarl, hmarl.cli, hmarl.tune, hmarl.tune.cli; "
        "heavy = [m for m in ('ray', 'botorch', 'gpytorch', 'optuna', 'matplotlib') if m in sys.modules]; "
        "print(heavy)"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_tune_without_the_extra_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(hmarl.tune, "missing_extra", lambda: ["ray", "botorch"])
    assert cli.main(["tune", "dqn", "--param", "lr=1e-4:1e-3", "--max-trials", "1"]) == 2
    error = capsys.readouterr().err
    assert "missing: ray, botorch" in error and 'pip install -e ".[tune]"' in error


def test_tune_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--space",
        "--param",
        "--length",
        "--searcher",
        "--budget",
        "--max-trials",
        "--metric",
        "--seed",
        "--name",
        "--storage",
        "--address",
        "--workers",
        "--cpus-per-trial",
        "--resume",
        "--plot",
        "--progress",
        "--verbose",
    ):
        assert option in text, option
    assert "boil" in text and "RAY_ADDRESS" in text
