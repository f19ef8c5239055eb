"""Typed configuration fields: a dataclass field with the help line every option needs."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


def option(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    """A dataclass field with a ``help`` line (and optional ``choices``) for the CLI."""
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def redefault(cls: type, name: str, default: Any) -> Any:
    """The option ``name`` of the dataclass ``cls`` with another default, for a subclass
    that keeps its help line and choices."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    if name not in fields:
        raise ValueError(f"{cls.__name__} has no option {name!r}")
    return option(default, fields[name].metadata["help"], fields[name].metadata.get("choices"))


def check_choice(name: str, value: Any, valid: Sequence[Any]) -> None:
    """Raise a ValueError naming ``name`` when ``value`` is not one of ``valid``."""
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(valid)}")
