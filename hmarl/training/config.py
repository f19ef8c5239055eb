"""Typed run configuration and its command line.

A trainer's configuration is one dataclass whose fields all carry a help line
(:func:`hmarl.core.option`); :func:`parse_config` turns it into an argparse parser, so
``--help`` explains every option and the parsed values keep their types.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hmarl.core import option
from hmarl.core.config import choices_of, is_section

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ConfigT = TypeVar("ConfigT", bound="DataclassInstance")


@dataclass
class CommonRunConfig:
    """What every training loop, online or offline, needs: name, seed, device, logging
    and checkpoints."""

    run_name: str = option("", "name of the run: TensorBoard logs go to <log-dir>/<run-name> (default: derived)")
    seed: int = option(0, "seed of every random stream (torch, numpy, environment)")
    device: str = option("auto", "torch device: auto (CUDA when present), cpu, cuda, cuda:1, ...")
    stop_at_target: bool = option(False, "stop training once --target-value is reached")
    log_dir: str = option("runs", "TensorBoard root directory")
    log_every: int = option(100, "updates between logged training metrics")
    checkpoint_dir: str = option("checkpoints", "checkpoints go to <checkpoint-dir>/<run-name>/")
    checkpoint_every: int = option(10_000, "updates between checkpoints (0: by --checkpoint-minutes and at the end only)")
    checkpoint_minutes: float = option(
        10.0, "minutes of wall clock between checkpoints, besides --checkpoint-every (0: none by time)"
    )
    checkpoint_replay: bool = option(
        False, "put the replay into checkpoints: resume is then bit-identical, but files grow by the replay's size"
    )
    keep_checkpoints: int = option(2, "most recent checkpoints kept on disk (0 keeps all)")
    resume: str = option(
        "",
        "continue the run saved in this checkpoint file, or in a run directory's newest intact one. Alone it "
        "continues that run exactly; with changed budget, learning rates, evaluation or logging options it starts a "
        "new run directory that records its parent",
    )
    progress: bool = option(True, "show a progress bar")


@dataclass
class RunConfig(CommonRunConfig):
    """What every online trainer's loop needs: environment, budget and evaluation, besides
    the common options."""

    env: str = option("CartPole-v1", "environment: an hmarl.envs module (e.g. trash_collection_v0) or a gymnasium id")
    env_kwargs: dict = option({}, 'keyword arguments of the environment as JSON, e.g. \'{"layout": "room"}\'')
    num_envs: int = option(8, "environment copies stepped together")
    total_steps: int = option(100_000, "environment steps to train for (summed over copies)")
    learning_starts: int = option(1_000, "environment steps before the first update")
    train_every: int = option(1, "vector steps between rounds of updates")
    updates_per_round: int = option(1, "updates in each round")
    eval_every: int = option(10_000, "environment steps between greedy evaluations (0 disables)")
    eval_episodes: int = option(20, "episodes per greedy evaluation")
    target_metric: str = option("return", "evaluation metric compared with --target-value (return, success, ...)")
    target_value: float = option(float("nan"), "report the first step at which the metric reaches this (nan: none)")
    target_max_length: float = option(
        float("nan"), "the target also needs the evaluation's mean episode length at or below this (nan: no limit)"
    )
    stop_on_divergence: bool = option(
        False, "stop with a checkpoint and a non-zero exit when values or the loss diverge (default: warn only)"
    )


def _field_type(field: dataclasses.Field, hints: dict[str, Any]) -> Any:
    hint = hints[field.name]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every default and keeps the description's usage examples on their own lines."""


def build_parser(config_cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one ``--option-name`` per field of ``config_cls``; the
    fields of a section (a nested options dataclass) form a group of their own, with flags
    as flat as the others (a flag two sections share is an error in the configuration)."""
    parser = argparse.ArgumentParser(
        description=description or config_cls.__doc__,
        formatter_class=HelpFormatter,
    )
    _add_options(parser, parser, config_cls, "", set())
    return parser


def _add_options(parser: argparse.ArgumentParser, group: Any, config_cls: type, prefix: str, flags: set[str]) -> None:
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        help_text = field.metadata.get("help")
        if not help_text:
            raise TypeError(f"config field {config_cls.__name__}.{field.name} has no help line")
        if is_section(field):
            section_cls = _field_type(field, hints)
            title = parser.add_argument_group(help_text, section_cls.__doc__)
            _add_options(parser, title, section_cls, f"{prefix}{field.name}.", flags)
            continue
        flag = "--" + field.name.replace("_", "-")
        if flag in flags:
            raise TypeError(f"{config_cls.__name__}: the option {flag} is defined twice (in two sections?)")
        flags.add(flag)
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            raise TypeError(f"{config_cls.__name__}.{field.name} needs a default (every option has one)")
        kind = _field_type(field, hints)
        kwargs: dict[str, Any] = {"default": default, "help": help_text, "dest": prefix + field.name}
        choices = choices_of(field)
        if choices is not None:
            kwargs["choices"] = choices
        elif prefix and kind is not bool:
            kwargs["metavar"] = field.name.upper()
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(kind) is tuple or kind is tuple:
            item_type = (typing.get_args(kind) or (str,))[0]
            group.add_argument(flag, nargs="+", type=item_type, **kwargs)
        elif kind is dict or typing.get_origin(kind) is dict:
            group.add_argument(flag, type=_json_object, **kwargs)
        else:
            group.add_argument(flag, type=kind, **kwargs)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def parse_config(config_cls: type[ConfigT], argv: Sequence[str] | None = None, description: str | None = None) -> ConfigT:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into an instance of ``config_cls``; the
    names of the options given on the command line are kept (see :func:`given_options`)."""
    parser = build_parser(config_cls, description)
    config = _build(config_cls, vars(parser.parse_args(argv)), "")
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    # Flags are unique across sections, so an option's own name stands for it.
    given = {dest.rsplit(".", 1)[-1] for dest in vars(parser.parse_args(argv))}
    setattr(config, GIVEN_ATTRIBUTE, frozenset(given))
    return config


def _build(config_cls: type[ConfigT], values: dict[str, Any], prefix: str) -> ConfigT:
    hints = typing.get_type_hints(config_cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(config_cls):
        kind = _field_type(field, hints)
        if is_section(field):
            kwargs[field.name] = _build(kind, values, f"{prefix}{field.name}.")
            continue
        value = values[prefix + field.name]
        if typing.get_origin(kind) is tuple or kind is tuple:
            value = tuple(value)
        kwargs[field.name] = value
    return config_cls(**kwargs)


def config_from_dict(config_cls: type[ConfigT], values: Mapping[str, Any]) -> ConfigT:
    """``config_cls`` from ``dataclasses.asdict`` of one (as checkpoints store it): sections
    from their dicts, tuples from lists. An option a section holds may also stand at the
    top level, as configurations from before the section stored it."""
    hints = typing.get_type_hints(config_cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(config_cls):
        kind = _field_type(field, hints)
        if is_section(field):
            names = {inner.name for inner in dataclasses.fields(kind)}
            flat = {name: values[name] for name in names if name in values}
            kwargs[field.name] = config_from_dict(kind, {**flat, **values.get(field.name, {})})
        elif field.name in values:
            value = values[field.name]
            kwargs[field.name] = tuple(value) if typing.get_origin(kind) is tuple and value is not None else value
    return config_cls(**kwargs)


def flat_options(config: Any) -> dict[str, Any]:
    """Every option of ``config`` by its own name, those of its sections included."""
    options: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if is_section(field):
            options.update(flat_options(value))
        else:
            options[field.name] = value
    return options


def with_options(config: ConfigT, values: Mapping[str, Any]) -> ConfigT:
    """``config`` with the options ``values`` (by their own names, as :func:`flat_options`) replaced."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        if is_section(field):
            section = getattr(config, field.name)
            inner = {name: value for name, value in values.items() if name in flat_options(section)}
            if inner:
                changes[field.name] = with_options(section, inner)
        elif field.name in values:
            changes[field.name] = values[field.name]
    return dataclasses.replace(config, **changes)


GIVEN_ATTRIBUTE = "_given_options"


def given_options(config: Any) -> frozenset[str]:
    """The options (by their own names) set on the command line when ``config`` came from
    :func:`parse_config`; otherwise those that differ from their class defaults."""
    given = getattr(config, GIVEN_ATTRIBUTE, None)
    if given is not None:
        return given
    defaults = flat_options(_defaults(type(config)))
    return frozenset(name for name, value in flat_options(config).items() if not _same(value, defaults.get(name)))


def _defaults(config_cls: type) -> Any:
    """An instance of ``config_cls`` with every default; fields without one get None."""
    kwargs = {
        field.name: None
        for field in dataclasses.fields(config_cls)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }
    return config_cls(**kwargs)


def _same(a: Any, b: Any) -> bool:
    """Equality that counts two NaNs as the same option value."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b)
