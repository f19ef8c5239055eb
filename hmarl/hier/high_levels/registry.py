"""The registry of high levels: name -> :class:`HighLevel` subclass."""

from __future__ import annotations

from hmarl.hier.high_levels.base import HighLevel

HIGH_LEVELS: dict[str, type[HighLevel]] = {}


def register(cls: type[HighLevel]) -> type[HighLevel]:
    """Make ``cls`` selectable as ``high_level=cls.name`` (a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, HighLevel)) or not cls.name:
        raise TypeError(f"register() takes a HighLevel subclass with a name, got {cls!r}")
    if HIGH_LEVELS.get(cls.name, cls) is not cls:
        raise ValueError(f"a high level named {cls.name!r} is registered already ({HIGH_LEVELS[cls.name].__name__})")
    HIGH_LEVELS[cls.name] = cls
    return cls


def high_level_class(name: str) -> type[HighLevel]:
    """The registered high level ``name``; a ValueError lists the valid ones."""
    if name not in HIGH_LEVELS:
        raise ValueError(f"high_level={name!r} is not valid; choose one of {list(HIGH_LEVELS)}")
    return HIGH_LEVELS[name]


def high_level_sections() -> dict[str, tuple[type, str]]:
    """The configuration sections of the registered high levels that have options."""
    return {name: (cls.Options, f"{name} high level") for name, cls in HIGH_LEVELS.items() if cls.Options is not None}
