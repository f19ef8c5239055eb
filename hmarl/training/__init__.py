"""What every trainer shares: typed configuration and its CLI, the batched-environment
rollout loop, greedy evaluation, TensorBoard logging, exact checkpoints, the summary."""

from hmarl.training.checkpoints import (
    CHECKPOINT_PATTERN,
    CheckpointError,
    agent_checkpoint_state,
    checkpoint_file,
    load_checkpoint,
    open_checkpoint,
    restore_agent,
)
from hmarl.training.config import HelpFormatter, RunConfig, build_parser, given_options, parse_config
from hmarl.training.envs import BatchedEnv, GymVectorEnv, make_vector_env
from hmarl.training.guard import DivergenceError
from hmarl.training.logger import RunLogger
from hmarl.training.loop import (
    Agent,
    AgentFactory,
    Budget,
    EnvSpec,
    LoopState,
    RunInterrupted,
    TrainResult,
    budget_of,
    evaluate,
    evaluate_episodes,
    evaluation_listener,
    make_transition,
    resolve_device,
    to_tensors,
    transition,
    train,
)
from hmarl.training.offline import OfflineAgent, OfflineResult, OfflineRunConfig, train_offline

__all__ = [
    "CHECKPOINT_PATTERN",
    "Agent",
    "AgentFactory",
    "BatchedEnv",
    "Budget",
    "CheckpointError",
    "DivergenceError",
    "EnvSpec",
    "GymVectorEnv",
    "HelpFormatter",
    "LoopState",
    "OfflineAgent",
    "OfflineResult",
    "OfflineRunConfig",
    "RunConfig",
    "RunInterrupted",
    "RunLogger",
    "TrainResult",
    "agent_checkpoint_state",
    "budget_of",
    "build_parser",
    "checkpoint_file",
    "evaluate",
    "evaluate_episodes",
    "evaluation_listener",
    "given_options",
    "load_checkpoint",
    "make_transition",
    "make_vector_env",
    "open_checkpoint",
    "parse_config",
    "resolve_device",
    "restore_agent",
    "to_tensors",
    "train",
    "train_offline",
    "transition",
]
