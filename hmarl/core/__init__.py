"""The large-batch update core: replay storage and samplers, the update engine (per-row
losses, a selection stage, hooks), optimisers, schedules, targets, vectorised ensembles.
It knows nothing of environments or of any algorithm: it updates parameters from
batches, and algorithms provide the losses."""

from hmarl.core.config import check_choice, option, redefault, section, with_sections
from hmarl.core.engine import (
    HOOK_POINTS,
    EngineConfig,
    LossFn,
    NonFiniteLossError,
    RowLoss,
    Selection,
    UpdateContext,
    UpdateEngine,
)
from hmarl.core.hooks import ZeroGradientFraction
from hmarl.core.ensemble import EnsembleMLP, VectorizedLinear
from hmarl.core.optim import OPTIMIZERS, AdaMod, make_optimizer
from hmarl.core.replay import DISCOUNT, BatchSource, Field, ReplayBuffer, Sample
from hmarl.core.samplers import (
    SAMPLERS,
    PrioritizedSampler,
    Sampler,
    SamplerConfig,
    SumTree,
    UniformSampler,
    make_sampler,
)
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
from hmarl.core.sparse import (
    TOPOLOGIES,
    ReplayControl,
    SparseConfig,
    SparseRun,
    SparseTraining,
    attach_sparse,
    check_sparse,
    csr_inference,
    erdos_renyi_densities,
    export_sparse,
    load_sparse,
)

__all__ = [
    "DISCOUNT",
    "HOOK_POINTS",
    "SAMPLERS",
    "TOPOLOGIES",
    "ReplayControl",
    "SparseConfig",
    "SparseRun",
    "SparseTraining",
    "attach_sparse",
    "check_sparse",
    "csr_inference",
    "erdos_renyi_densities",
    "export_sparse",
    "load_sparse",
    "BatchSource",
    "LossFn",
    "PrioritizedSampler",
    "RowLoss",
    "Sample",
    "Sampler",
    "SamplerConfig",
    "Selection",
    "SumTree",
    "UniformSampler",
    "UpdateContext",
    "make_sampler",
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
    "ZeroGradientFraction",
    "check_choice",
    "hard_update",
    "make_optimizer",
    "make_schedule",
    "make_target",
    "option",
    "polyak_update",
    "redefault",
    "scale_lr",
    "section",
    "with_sections",
]
