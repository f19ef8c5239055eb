"""``hmarl.envs`` is importable without torch: other libraries use our environments alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
{statement}
loaded = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
print(",".join(loaded))
"""


@pytest.mark.parametrize(
    "statement",
    ["import hmarl.envs", "from hmarl.envs import trash_collection_v0"],
)
def test_envs_do_not_import_torch(statement):
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == "", f"{statement!r} imported {result.stdout.strip()}"
