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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hmarl.core import option

ConfigT = TypeVar("ConfigT")


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
        "", "continue the run saved in this checkpoint file, or in a run directory's newest intact one. Alone it "
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
    """An argparse parser with one ``--option-name`` per field of ``config_cls``."""
    parser = argparse.ArgumentParser(
        description=description or config_cls.__doc__,
        formatter_class=HelpFormatter,
    )
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        help_text = field.metadata.get("help")
        if not help_text:
            raise TypeError(f"config field {config_cls.__name__}.{field.name} has no help line")
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        kind = _field_type(field, hints)
        kwargs: dict[str, Any] = {"default": default, "help": help_text, "dest": field.name}
        if "choices" in field.metadata:
            kwargs["choices"] = field.metadata["choices"]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(kind) is tuple or kind is tuple:
            item_type = (typing.get_args(kind) or (str,))[0]
            parser.add_argument(flag, nargs="+", type=item_type, **kwargs)
        elif kind is dict or typing.get_origin(kind) is dict:
            parser.add_argument(flag, type=_json_object, **kwargs)
        else:
            parser.add_argument(flag, type=kind, **kwargs)
    return parser


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
    namespace = parser.parse_args(argv)
    values = vars(namespace)
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        kind = _field_type(field, hints)
        if typing.get_origin(kind) is tuple or kind is tuple:
            values[field.name] = tuple(values[field.name])
    config = config_cls(**values)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    setattr(config, GIVEN_ATTRIBUTE, frozenset(given))
    return config


GIVEN_ATTRIBUTE = "_given_options"


def given_options(config: Any) -> frozenset[str]:
    """The fields set on the command line when ``config`` came from :func:`parse_config`;
    otherwise the fields that differ from their class defaults."""
    given = getattr(config, GIVEN_ATTRIBUTE, None)
    if given is not None:
        return given
    changed = set()
    for field in dataclasses.fields(config):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        if not _same(getattr(config, field.name), default):
            changed.add(field.name)
    return frozenset(changed)


def _same(a: Any, b: Any) -> bool:
    """Equality that counts two NaNs as the same option value."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b)
