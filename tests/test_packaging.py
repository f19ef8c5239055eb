"""The wheel ships every package of the source tree (pyproject lists them by hand)."""

from __future__ import annotations

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
