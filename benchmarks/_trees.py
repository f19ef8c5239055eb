"""Another commit's package, for benchmarks that compare this tree with it.

``extract(rev, into)`` writes commit ``rev``'s package with ``git archive`` and lays it
out as the installed package (``hmarl.envs``, ``hmarl.trainers`` and ``hmarl.assets``
live beside ``hmarl`` in the source tree); ``import_from(tree)`` makes ``import hmarl``
load the package in ``tree`` instead of the installed one.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Source folders installed as subpackages of hmarl (pyproject's package-dir).
SUBPACKAGES = ("envs", "trainers", "assets")


def extract(rev: str, into: Path) -> Path:
    """Commit ``rev``'s package under ``into``, importable with :func:`import_from`."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", rev, "hmarl", *SUBPACKAGES], cwd=REPO, check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    for name in SUBPACKAGES:
        link = into / "hmarl" / name
        if (into / name).exists() and not link.exists():
            link.symlink_to(into / name, target_is_directory=True)
    return into


def import_from(tree: str | Path) -> None:
    """Make ``import hmarl`` load the package in ``tree``, not the installed one."""
    sys.meta_path[:] = [f for f in sys.meta_path if not (getattr(f, "__module__", "") or "").startswith("__editable__")]
    sys.path.insert(0, str(tree))
