"""Checkpoint files: written atomically with a content hash beside them, verified on load.

A run directory holds ``update_<updates>.pt`` files (zero-padded, so they sort by name)
and, beside each, ``update_<updates>.pt.sha256`` with the SHA-256 of its bytes. Loading
checks the hash; a damaged file is named in a :class:`CheckpointError`, and a run
directory falls back to its newest intact checkpoint and says so on stderr.

Replay is large (hundreds of MB for the hierarchical learners) and is left out of
checkpoints unless asked for. The rule is generic: the top-level entries of
``agent.state_dict()`` named ``replay`` or ending in ``_replay`` are the replay. A
checkpoint without them resumes with an empty replay that refills from the
environment: the networks, optimisers, schedules and RNG streams continue exactly, the
training that follows does not (it samples from other transitions). Only a checkpoint
written with the replay (``--checkpoint-replay``) resumes bit-identically.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

#: File names of a run's checkpoints; their zero-padded update counts sort by name.
CHECKPOINT_PATTERN = "update_*.pt"
HASH_SUFFIX = ".sha256"
_HASH_CHUNK = 1 << 20


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used: damaged, truncated or not a checkpoint."""


def checkpoint_file(path: str | Path) -> Path:
    """``path`` itself if it is a file, or the newest checkpoint of the run directory ``path``."""
    return run_checkpoints(path)[-1]


def run_checkpoints(path: str | Path) -> list[Path]:
    """``[path]`` for a checkpoint file, or a run directory's checkpoints, oldest first."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob(CHECKPOINT_PATTERN))
        if not files:
            raise FileNotFoundError(f"run directory {str(path)!r} holds no {CHECKPOINT_PATTERN} checkpoint")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} is neither a file nor a run directory")
    return [path]


def hash_file(path: Path) -> Path:
    """Where the content hash of the checkpoint ``path`` is kept."""
    return path.with_name(path.name + HASH_SUFFIX)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)


def save_checkpoint_file(payload: Mapping[str, Any], path: Path) -> Path:
    """Write ``payload`` to ``path`` with its hash beside it; a crash at any moment leaves
    either the previous state or both files complete."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as stream:
        torch.save(dict(payload), stream)
        stream.flush()
        os.fsync(stream.fileno())
    # The hash goes first: a hash without its checkpoint is ignored, a checkpoint
    # without its hash would be unverifiable.
    _write_atomically(hash_file(path), f"{file_digest(partial)}  {path.name}\n".encode())
    os.replace(partial, path)
    return path


def verify_checkpoint(path: Path) -> bool:
    """Raises :class:`CheckpointError` if ``path`` does not match its hash; False where it
    has no hash file (written before hashes were kept), True where it matched."""
    hashes = hash_file(path)
    if not hashes.is_file():
        return False
    recorded = hashes.read_text().split()
    expected = recorded[0] if recorded else ""
    actual = file_digest(path)
    if actual != expected:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: its SHA-256 {actual[:16]}... differs from the "
            f"{expected[:16] or 'empty'}... recorded in {hashes.name}"
        )
    return True


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint file ``path``, verified; any failure names the file."""
    path = Path(path)
    verified = verify_checkpoint(path)
    try:
        # Checkpoints hold numpy arrays, the environments' states and RNG states next to the tensors.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({type(error).__name__}: {error})") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint")
    if not verified:
        print(f"warning: checkpoint {str(path)!r} has no {HASH_SUFFIX} file; loaded unverified", file=sys.stderr)
    return checkpoint


def open_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint at ``path`` and the file it came from.

    A file must be intact. A run directory gives its newest intact checkpoint; every
    damaged one passed over is named on stderr.
    """
    candidates = run_checkpoints(path)
    errors: list[str] = []
    for candidate in reversed(candidates):
        try:
            checkpoint = read_checkpoint(candidate)
        except CheckpointError as error:
            if len(candidates) == 1:
                raise
            errors.append(str(error))
            print(f"warning: {error}; trying the one before it", file=sys.stderr)
            continue
        if errors:
            print(f"falling back to checkpoint {str(candidate)!r}, the newest intact one", file=sys.stderr)
        return candidate, checkpoint
    raise CheckpointError(f"run directory {str(path)!r} holds no intact checkpoint:\n" + "\n".join(errors))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``: a checkpoint file, or a run directory's newest intact one."""
    return open_checkpoint(path)[1]


def remove_checkpoint(path: Path) -> None:
    path.unlink(missing_ok=True)
    hash_file(path).unlink(missing_ok=True)


def is_replay_key(name: str) -> bool:
    """Whether the agent state entry ``name`` is replay (see the module docstring)."""
    return name == "replay" or name.endswith("_replay")


def agent_checkpoint_state(agent: Any, include_replay: bool) -> dict[str, Any]:
    """``agent.state_dict()``, without its replay entries unless ``include_replay``."""
    state = agent.state_dict()
    if include_replay:
        return state
    return {name: value for name, value in state.items() if not is_replay_key(name)}


def restore_agent(agent: Any, state: Mapping[str, Any]) -> bool:
    """Load ``state`` into ``agent``; replay entries it lacks keep the agent's own (empty)
    replay. Returns whether the replay came from ``state``."""
    own = agent.state_dict()
    missing = [name for name in own if is_replay_key(name) and name not in state]
    agent.load_state_dict({**state, **{name: own[name] for name in missing}})
    return not missing
