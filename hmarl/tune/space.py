"""The search space of a study: ranges over a trainer's typed config fields.

A range is ``low:high`` with an optional ``:log`` (sampled on a log scale); integer
fields are sampled as integers. One range may be the *training length*, by default
``total_steps``: its values are rounded to whole evaluation periods, and BOIL and ASHA
treat it as the length of the learning curve rather than as a hyperparameter.

On the command line::

    --param lr=1e-5:1e-2:log --param gamma=0.8:1.0 --length total_steps=4000:40000

or in a YAML, TOML or JSON file (``--space space.yaml``)::

    params:
      lr: {low: 1.0e-5, high: 1.0e-2, log: true}
      gamma: {low: 0.8, high: 1.0}
    length: {field: total_steps, low: 4000, high: 40000}
    options: {eval_every: 2000, eval_episodes: 10}

``options`` are fixed trainer options, as if given on its command line. Everything is
checked against the trainer's configuration before any trial runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import typing
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmarl.core.config import is_section
from hmarl.training.config import _field_type, parse_config, with_options
from hmarl.training.validation import check_fields

#: The field that is the training length unless the study names another.
DEFAULT_LENGTH_FIELD = "total_steps"


@dataclass(frozen=True)
class Range:
    """``name`` in [low, high], on a log scale if ``log``, integers if ``integer``."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def value(self, unit: float) -> float | int:
        """The value at ``unit`` in [0, 1] along the range."""
        unit = min(max(float(unit), 0.0), 1.0)
        if self.log:
            value = math.exp(math.log(self.low) + unit * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + unit * (self.high - self.low)
        return round(value) if self.integer else value

    def unit(self, value: float) -> float:
        """Where ``value`` lies along the range, in [0, 1]."""
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def describe(self) -> str:
        return f"{self.name}={self.low:g}:{self.high:g}{':log' if self.log else ''}"


@dataclass(frozen=True)
class SearchSpace:
    """The ranges searched, the training-length range (if any), and fixed options as
    trainer command-line arguments."""

    params: tuple[Range, ...]
    length: Range | None = None
    options: tuple[str, ...] = ()
    #: Environment steps between evaluations: the spacing of a curve's points.
    eval_every: int = 0

    @property
    def max_curve_length(self) -> int:
        """Points of a curve run to the longest length: one evaluation per period."""
        top = self.length.high if self.length else 0
        return max(math.ceil(top / self.eval_every), 1) if self.eval_every else 1

    def round_length(self, steps: float) -> int:
        """``steps`` rounded to whole evaluation periods, within the length range."""
        assert self.length is not None
        periods = max(round(steps / self.eval_every), 1)
        value = int(min(max(periods * self.eval_every, self.length.low), self.length.high))
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": [dataclasses.asdict(r) for r in self.params],
            "length": dataclasses.asdict(self.length) if self.length else None,
            "options": list(self.options),
            "eval_every": self.eval_every,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        return cls(
            tuple(Range(**r) for r in data["params"]),
            Range(**data["length"]) if data["length"] else None,
            tuple(data["options"]),
            int(data["eval_every"]),
        )


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def option_args(values: Mapping[str, Any]) -> list[str]:
    """Trainer command-line arguments that set ``values`` (by field name)."""
    args: list[str] = []
    for name, value in values.items():
        if isinstance(value, bool):
            args.append(flag(name) if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, (dict, list)) and not isinstance(value, tuple):
            args += [flag(name), json.dumps(value)] if isinstance(value, dict) else [flag(name), *map(str, value)]
        elif isinstance(value, tuple):
            args += [flag(name), *map(str, value)]
        else:
            args += [flag(name), repr(value) if isinstance(value, float) else str(value)]
    return args


def _field_kinds(config_cls: type) -> dict[str, Any]:
    """Every field of ``config_cls`` (sections' included) by its own name -> its type."""
    kinds: dict[str, Any] = {}
    hints = typing.get_type_hints(config_cls)
    for field_ in dataclasses.fields(config_cls):
        kind = _field_type(field_, hints)
        if is_section(field_):
            kinds.update(_field_kinds(kind))
        else:
            kinds[field_.name] = kind
    return kinds


def parse_range(argument: str, text: str) -> tuple[str, dict[str, Any]]:
    """``name=low:high[:log]`` -> (name, {low, high, log}); ``argument`` names the option
    in errors."""
    name, sep, bounds = text.partition("=")
    parts = bounds.split(":")
    if not sep or not name or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise ValueError(f"{argument}={text!r} is not valid; write NAME=LOW:HIGH or NAME=LOW:HIGH:log")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"{argument}={text!r} is not valid; LOW and HIGH must be numbers") from None
    return name.strip().replace("-", "_"), {"low": low, "high": high, "log": len(parts) == 3}


def read_space_file(path: str) -> dict[str, Any]:
    """The contents of a YAML (.yaml/.yml), TOML (.toml) or JSON (.json) space file."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"space={path!r} is not valid; no such file")
    suffix = file.suffix.lower()
    text = file.read_text()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            if sys.version_info < (3, 11):
                raise ValueError(f"space={path!r}: TOML space files need Python 3.11 or later (tomllib)")
            else:
                import tomllib

                data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ValueError(f"space={path!r} is not valid; give a .yaml, .yml, .toml or .json file")
    except ValueError:
        raise
    except Exception as error:  # the parsers' own error types differ
        raise ValueError(f"space={path!r} could not be read: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"space={path!r} is not valid; it must hold a mapping with 'params'")
    unknown = sorted(set(data) - {"params", "length", "options"})
    if unknown:
        raise ValueError(f"space={path!r} has unknown keys {unknown}; valid keys are params, length, options")
    return data


def build_space(
    config_cls: type,
    params: Mapping[str, Mapping[str, Any]],
    length: Mapping[str, Any] | None,
    options: Sequence[str],
    argument: str = "param",
) -> SearchSpace:
    """The checked search space over ``config_cls``'s fields. Refused before any work, with
    the argument named: an unknown field, a field that is not a number, an empty or
    inverted range, a log range that reaches 0, and bounds the trainer itself refuses."""
    kinds = _field_kinds(config_cls)
    base = _parse(config_cls, options, "options")
    if not params:
        raise ValueError(f"{argument}: no ranges given; give at least one NAME=LOW:HIGH (or 'params' in --space)")
    ranges = [_range(kinds, name, spec, f"{argument} {name}") for name, spec in params.items()]
    length_range = None
    eval_every = int(getattr(base, "eval_every", 0) or 0)
    if length is not None:
        spec = dict(length)
        name = str(spec.pop("field", DEFAULT_LENGTH_FIELD))
        length_range = _range(kinds, name, spec, f"length {name}")
        if not length_range.integer:
            raise ValueError(f"length {name}: the training length must be an integer field, not {kinds[name].__name__}")
        if not eval_every:
            raise ValueError("length: a training length needs evaluations along the run; set eval_every > 0")
        if length_range.low < eval_every:
            raise ValueError(
                f"length {name}={length_range.low:g}:{length_range.high:g} is not valid; the shortest run must hold "
                f"one evaluation, so LOW must be >= eval_every ({eval_every})"
            )
        if any(r.name == name for r in ranges):
            raise ValueError(f"length {name}: {name} is also given as a param; give it once")
    names = [r.name for r in ranges]
    if len(set(names)) != len(names):
        raise ValueError(f"{argument}: a field is given twice in {names}")
    for r in ranges + ([length_range] if length_range else []):
        for bound in (r.low, r.high):
            value = int(bound) if r.integer else bound
            try:
                check_fields(with_options(base, {r.name: value}))
            except ValueError as error:
                raise ValueError(f"{argument if r is not length_range else 'length'} {r.describe()}: {error}") from None
    return SearchSpace(tuple(ranges), length_range, tuple(options), eval_every)


def _range(kinds: Mapping[str, Any], name: str, spec: Mapping[str, Any], argument: str) -> Range:
    if name not in kinds:
        raise ValueError(f"{argument}: {name!r} is not a field of the trainer's config; fields: {sorted(kinds)}")
    kind = kinds[name]
    if kind is bool or kind not in (int, float):
        raise ValueError(f"{argument}: {name} is {getattr(kind, '__name__', kind)}; only int and float fields take a range")
    unknown = sorted(set(spec) - {"low", "high", "log"})
    if unknown or "low" not in spec or "high" not in spec:
        raise ValueError(f"{argument}: give low and high (and optionally log), got {dict(spec)}")
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (TypeError, ValueError):
        raise ValueError(f"{argument}: low and high must be numbers, got {dict(spec)}") from None
    log = bool(spec.get("log", False))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{argument}: low and high must be finite, got {low:g}:{high:g}")
    if low == high:
        raise ValueError(f"{argument}: the range {low:g}:{high:g} is empty; LOW must be below HIGH")
    if low > high:
        raise ValueError(f"{argument}: the range {low:g}:{high:g} is inverted; LOW must be below HIGH")
    if log and low <= 0:
        raise ValueError(f"{argument}: a log range must be positive, got {low:g}:{high:g}")
    integer = kind is int
    if integer and math.ceil(low) > math.floor(high):
        raise ValueError(f"{argument}: {name} is an integer and {low:g}:{high:g} holds none")
    return Range(name, low, high, log, integer)


def _parse(config_cls: type, options: Sequence[str], argument: str) -> Any:
    """``config_cls`` from command-line ``options``; argparse's refusal becomes a ValueError."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return parse_config(config_cls, list(options))
    except SystemExit:
        message = stderr.getvalue().strip().splitlines()
        raise ValueError(f"{argument} {' '.join(options)!r}: {message[-1] if message else 'not valid'}") from None


def base_config(config_cls: type, space: SearchSpace) -> Any:
    """The trainer's configuration with the fixed options."""
    return _parse(config_cls, space.options, "options")
