"""The wheel ships every package of the source tree (pyproject lists them by hand), and
the version is written once."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_source_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    roots = config["package-dir"]
    found = set()
    for name, folder in roots.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            if any(part.startswith((".", "_")) for part in relative.parts):
                continue
            found.add(".".join((name, *relative.parts)))
    missing = sorted(found - listed)
    assert not missing, f"packages missing from pyproject's [tool.setuptools] packages: {missing}"
    assert "hmarl.hier.high_levels" in found


def test_installed_version_is_the_package_version():
    from importlib.metadata import version

    import hmarl

    assert hmarl.__version__ == version("hmarl")
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*(\.dev\d+)?", hmarl.__version__), hmarl.__version__


def test_the_version_is_written_in_one_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "pyproject.toml must not write the version"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hmarl.__version__"}
    assignment = re.compile(r"^\s*(__version__|version)\s*=\s*['\"]\d", re.MULTILINE)
    writers = [
        str(path.relative_to(ROOT))
        for folder in ("hmarl", "envs", "trainers", "benchmarks", "examples")
        for path in (ROOT / folder).rglob("*.py")
        if assignment.search(path.read_text())
    ]
    assert writers == ["hmarl/__init__.py"], writers
    for name in ("setup.py", "setup.cfg"):
        assert not (ROOT / name).exists(), f"{name} would be a second place for the version"


def test_importing_hmarl_alone_does_not_import_torch():
    # Building reads the version from hmarl/__init__.py; importing the package's root
    # must stay cheap, so its metadata never needs the heavy dependencies.
    code = "import sys, hmarl; assert 'torch' not in sys.modules, 'hmarl imported torch'; print(hmarl.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == __import__("hmarl").__version__
