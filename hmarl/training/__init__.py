"""What every trainer shares: typed configuration and its CLI, the batched-environment
rollout loop, greedy evaluation, TensorBoard logging, exact checkpoints, the summary."""

from hmarl.training.config import HelpFormatter, RunConfig, build_parser, parse_config
from hmarl.training.envs import BatchedEnv, GymVectorEnv, make_vector_env
from hmarl.training.logger import RunLogger
from hmarl.training.loop import (
    Agent,
    AgentFactory,
    Budget,
    EnvSpec,
    LoopState,
    TrainResult,
    CHECKPOINT_PATTERN,
    budget_of,
    checkpoint_file,
    evaluate,
    load_checkpoint,
    make_transition,
    resolve_device,
    to_tensors,
    train,
)
from hmarl.training.offline import OfflineAgent, OfflineResult, OfflineRunConfig, train_offline

__all__ = [
    "Agent",
    "AgentFactory",
    "BatchedEnv",
    "Budget",
    "EnvSpec",
    "GymVectorEnv",
    "HelpFormatter",
    "LoopState",
    "OfflineAgent",
    "OfflineResult",
    "OfflineRunConfig",
    "RunConfig",
    "RunLogger",
    "TrainResult",
    "CHECKPOINT_PATTERN",
    "budget_of",
    "build_parser",
    "checkpoint_file",
    "evaluate",
    "load_checkpoint",
    "make_transition",
    "make_vector_env",
    "parse_config",
    "resolve_device",
    "to_tensors",
    "train",
    "train_offline",
]
