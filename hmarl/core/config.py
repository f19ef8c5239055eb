"""Typed configuration fields: a dataclass field with the help line every option needs,
and sections: a dataclass of options nested in a configuration under a name (one
learner's own options, for instance), shown as a group of the command line."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def option(default: Any, help: str, choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None) -> Any:
    """A dataclass field with a ``help`` line (and optional ``choices``) for the CLI.
    ``choices`` may be a function, asked when the command line is built (a registry's
    names, which may grow after the configuration class was defined)."""
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = choices if callable(choices) else tuple(choices)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def section(cls: type, help: str) -> Any:
    """A field holding the options dataclass ``cls`` (defaults: ``cls()``), titled ``help``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"a section holds a dataclass of options, got {cls!r}")
    return dataclasses.field(default_factory=cls, metadata={"help": help, "section": True})


def is_section(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("section"))


def with_sections(name: str, base: type, sections: Mapping[str, tuple[type, str]], doc: str | None = None) -> type:
    """The dataclass ``base`` extended by one section field per entry of ``sections``
    (field name -> (options dataclass, title))."""
    fields = [(field_name, cls, section(cls, title)) for field_name, (cls, title) in sections.items()]
    made = dataclasses.make_dataclass(name, fields, bases=(base,))
    made.__doc__ = doc or base.__doc__
    made.__module__ = base.__module__
    return made


def redefault(cls: type, name: str, default: Any) -> Any:
    """The option ``name`` of the dataclass ``cls`` with another default, for a subclass
    that keeps its help line and choices."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    if name not in fields:
        raise ValueError(f"{cls.__name__} has no option {name!r}")
    return option(default, fields[name].metadata["help"], fields[name].metadata.get("choices"))


def choices_of(field: dataclasses.Field) -> tuple[Any, ...] | None:
    """The valid values of an option (asking its function, if it has one), or None."""
    choices = field.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def check_choice(name: str, value: Any, valid: Sequence[Any]) -> None:
    """Raise a ValueError naming ``name`` when ``value`` is not one of ``valid``."""
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(valid)}")
