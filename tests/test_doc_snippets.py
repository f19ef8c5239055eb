"""Every snippet of the README and the docs that is marked runnable runs.

A line ``<!-- runnable -->`` directly before a fenced ``python`` or ``bash`` block marks
it; ``<!-- runnable: requires=torchrl,agilerl -->`` runs it only where those modules
import (elsewhere it is skipped, saying which are missing). Python blocks run with this
interpreter, bash blocks with ``bash -euo pipefail`` and this environment's ``bin`` first
on ``PATH``; both from the repository root, as a reader who followed the README stands.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- runnable(?::\s*requires=([\w.,\s]+))?\s*-->\s*$")
FENCE = re.compile(r"^```(python|bash)\s*$")
#: Fewer snippets than this means the collection broke, not that the docs lost them.
MIN_SNIPPETS = 20
TIMEOUT_S = 240


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    language: str
    code: str
    requires: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets_in(path: Path) -> list[Snippet]:
    """The runnable snippets of one Markdown file; a marker not followed directly by a
    python or bash fence, or a fence never closed, is an error."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if not match:
            continue
        fence = FENCE.match(lines[i + 1].strip()) if i + 1 < len(lines) else None
        if fence is None:
            raise ValueError(f"{path}:{i + 1}: a runnable marker must be followed by a ```python or ```bash line")
        try:
            end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
        except StopIteration:
            raise ValueError(f"{path}:{i + 2}: the runnable block is never closed") from None
        requires = tuple(name.strip() for name in (match.group(1) or "").split(",") if name.strip())
        found.append(Snippet(path, i + 2, fence.group(1), "\n".join(lines[i + 2 : end]) + "\n", requires))
    return found


def all_snippets() -> list[Snippet]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [snippet for path in files if path.is_file() for snippet in snippets_in(path)]


SNIPPETS = all_snippets()


@functools.cache
def importable(module: str) -> bool:
    """Whether ``module`` imports in this environment (tried in a child process, so a
    library's import side effects stay out of the test run)."""
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, timeout=120)
    return result.returncode == 0


def test_snippets_are_found():
    assert len(SNIPPETS) >= MIN_SNIPPETS, [s.name for s in SNIPPETS]
    assert {s.language for s in SNIPPETS} == {"python", "bash"}


def test_a_marker_without_a_block_is_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- runnable -->\nprint(1)\n")
    with pytest.raises(ValueError, match="must be followed by"):
        snippets_in(page)
    page.write_text("<!-- runnable: requires=numpy -->\n```python\nprint(1)\n")
    with pytest.raises(ValueError, match="never closed"):
        snippets_in(page)
    page.write_text("text\n<!-- runnable: requires=numpy, torch -->\n```bash\necho hi\n```\n```python\nx\n```\n")
    (snippet,) = snippets_in(page)
    assert (snippet.language, snippet.code, snippet.requires, snippet.line) == ("bash", "echo hi\n", ("numpy", "torch"), 3)


def run_snippet(snippet: Snippet, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "dummy",
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    script = tmp_path / ("snippet.py" if snippet.language == "python" else "snippet.sh")
    script.write_text(snippet.code)
    command = [sys.executable, str(script)] if snippet.language == "python" else ["bash", "-euo", "pipefail", str(script)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.name)
def test_snippet_runs(snippet, tmp_path):
    missing = [module for module in snippet.requires if not importable(module)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}, which does not import here")
    result = run_snippet(snippet, tmp_path)
    assert result.returncode == 0, (
        f"{snippet.name} ({snippet.language}) exited with {result.returncode}:\n{snippet.code}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )


def test_a_failing_snippet_fails_with_its_output(tmp_path):
    snippet = Snippet(ROOT / "README.md", 1, "bash", "echo visible-output\nfalse\necho never\n", ())
    result = run_snippet(snippet, tmp_path)
    assert result.returncode == 1 and "visible-output" in result.stdout and "never" not in result.stdout
