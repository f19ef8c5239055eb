"""The large-batch update core: replay, update engine, optimisers, schedules, targets,
vectorised ensembles. It knows nothing of environments or of any algorithm: it
updates parameters from batches, and algorithms provide the losses."""

from hmarl.core.config import check_choice, option, redefault
from hmarl.core.engine import EngineConfig, NonFiniteLossError, UpdateEngine
from hmarl.core.ensemble import EnsembleMLP, VectorizedLinear
from hmarl.core.optim import OPTIMIZERS, AdaMod, make_optimizer
from hmarl.core.replay import DISCOUNT, Field, ReplayBuffer
from hmarl.core.schedules import (
    LR_SCALINGS,
    SCHEDULES,
    AutoWarmup,
    ConstantSchedule,
    CosineSchedule,
    make_schedule,
    scale_lr,
)
from hmarl.core.targets import TARGET_UPDATES, hard_update, make_target, polyak_update

__all__ = [
    "DISCOUNT",
    "LR_SCALINGS",
    "OPTIMIZERS",
    "SCHEDULES",
    "TARGET_UPDATES",
    "AdaMod",
    "AutoWarmup",
    "ConstantSchedule",
    "CosineSchedule",
    "EngineConfig",
    "EnsembleMLP",
    "Field",
    "NonFiniteLossError",
    "ReplayBuffer",
    "UpdateEngine",
    "VectorizedLinear",
    "check_choice",
    "hard_update",
    "make_optimizer",
    "make_schedule",
    "make_target",
    "option",
    "polyak_update",
    "redefault",
    "scale_lr",
]
