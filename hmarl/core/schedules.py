"""Learning-rate rules and schedules.

The rule scales a base learning rate tuned at ``base_batch_size`` to the batch size
in use (LB-SAC scales by the square root). A schedule then moves the learning rate
during training; the engine reads ``schedule.lr`` before each optimiser step and
calls ``schedule.step(loss)`` after it.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch

LR_SCALINGS = ("none", "sqrt", "linear")
SCHEDULES = ("constant", "cosine", "autowu")


def scale_lr(base_lr: float, batch_size: int, base_batch_size: int, rule: str) -> float:
    """The learning rate for ``batch_size`` given ``base_lr`` tuned at ``base_batch_size``."""
    if batch_size < 1 or base_batch_size < 1:
        raise ValueError(f"batch_size and base_batch_size must be >= 1, got {batch_size} and {base_batch_size}")
    ratio = batch_size / base_batch_size
    if rule == "none":
        return base_lr
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    if rule == "linear":
        return base_lr * ratio
    raise ValueError(f"lr_scaling={rule!r} is not known; choose one of {list(LR_SCALINGS)}")


class Schedule(Protocol):
    lr: float

    def step(self, loss: float) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ConstantSchedule:
    """The learning rate stays at ``lr``."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, loss: float) -> None:
        """A constant rate ignores the loss."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A constant rate has no state to restore."""


class CosineSchedule:
    """Cosine decay from ``lr`` to zero over ``total_steps``."""

    def __init__(self, lr: float, total_steps: int) -> None:
        self.peak_lr = lr
        self.total_steps = max(total_steps, 1)
        self.steps = 0
        self.lr = lr

    def step(self, loss: float) -> None:
        self.steps += 1
        progress = min(self.steps / self.total_steps, 1.0)
        self.lr = 0.5 * self.peak_lr * (1.0 + math.cos(math.pi * progress))

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.lr = float(state["lr"])


class GPSmoother:
    """Gaussian-process regression of a loss curve over x in [0, 1].

    Constant mean (the mean loss) and a scaled RBF kernel with a fixed lengthscale;
    output scale and noise are fitted by maximising the marginal likelihood on a
    subsample, as in AutoWU. Runs in float64 on the CPU: the curves are short.
    """

    def __init__(self, lengthscale: float = 0.2, fit_points: int = 100, fit_steps: int = 100) -> None:
        self.lengthscale = lengthscale
        self.fit_points = fit_points
        self.fit_steps = fit_steps

    def _kernel(self, a: torch.Tensor, b: torch.Tensor, outputscale: torch.Tensor) -> torch.Tensor:
        return outputscale * torch.exp(-0.5 * ((a[:, None] - b[None, :]) / self.lengthscale) ** 2)

    def fit(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[float, float]:
        """Output scale and noise variance that maximise the likelihood of ``y``."""
        pick = _subsample(len(x), self.fit_points, generator)
        x, y = x[pick], y[pick]
        log_outputscale = torch.zeros((), dtype=torch.float64, requires_grad=True)
        log_noise = torch.tensor(math.log(1e-3), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.Adam([log_outputscale, log_noise], lr=0.01)
        eye = torch.eye(len(x), dtype=torch.float64)
        for _ in range(self.fit_steps):
            optimizer.zero_grad()
            covariance = self._kernel(x, x, log_outputscale.exp()) + (log_noise.exp() + 1e-6) * eye
            cholesky = torch.linalg.cholesky(covariance)
            alpha = torch.cholesky_solve(y[:, None], cholesky)
            negative_log_likelihood = 0.5 * (y[:, None] * alpha).sum() + cholesky.diagonal().log().sum()
            negative_log_likelihood.backward()
            optimizer.step()
        return float(log_outputscale.detach().exp()), float(log_noise.detach().exp()) + 1e-6

    def posterior(
        self, x: torch.Tensor, y: torch.Tensor, grid: torch.Tensor, outputscale: float, noise: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior mean and variance of the smooth curve at ``grid``, and the covariance
        of every grid point with the last one (all the minimum test needs)."""
        scale = torch.tensor(outputscale, dtype=torch.float64)
        covariance = self._kernel(x, x, scale) + noise * torch.eye(len(x), dtype=torch.float64)
        cholesky = torch.linalg.cholesky(covariance)
        cross = self._kernel(x, grid, scale)
        whitened = torch.linalg.solve_triangular(cholesky, torch.cat([y[:, None], cross], 1), upper=False)
        whitened_y, whitened_cross = whitened[:, 0], whitened[:, 1:]
        mean = whitened_cross.T @ whitened_y
        variance = outputscale - (whitened_cross**2).sum(0)
        with_last = self._kernel(grid, grid[-1:], scale)[:, 0] - whitened_cross.T @ whitened_cross[:, -1]
        return mean, variance, with_last


def _subsample(count: int, limit: int, generator: torch.Generator) -> torch.Tensor:
    if count <= limit:
        return torch.arange(count)
    return torch.randperm(count, generator=generator)[:limit].sort().values


class AutoWarmup:
    """AutoWU (Kim et al., 2021): exponential warm-up, online minimum detection, decay.

    The learning rate grows from ``min_lr_factor * lr`` by a constant factor per step
    and would reach ``lr`` after ``max_warmup_fraction`` of the steps. Every
    ``check_every`` steps the losses so far are smoothed by a Gaussian process; a check
    votes "the minimum is behind us" when a majority of ``repeats`` posterior draws
    (each conditioned on its own subsample) put the probability that some earlier
    point lies below the current one above ``confidence``. After ``patience``
    consecutive votes the learning rate is set to its value at the smoothed loss
    minimum and decays to zero by a cosine over the remaining steps.
    """

    def __init__(
        self,
        lr: float,
        total_steps: int,
        min_lr_factor: float = 1e-5,
        max_warmup_fraction: float = 0.5,
        check_every: int = 100,
        patience: int = 3,
        confidence: float = 0.95,
        repeats: int = 5,
        grid_points: int = 500,
        condition_points: int = 500,
        seed: int = 0,
    ) -> None:
        if not 0.0 < min_lr_factor < 1.0:
            raise ValueError(f"min_lr_factor must be in (0, 1), got {min_lr_factor}")
        if not 0.0 < max_warmup_fraction <= 1.0:
            raise ValueError(f"max_warmup_fraction must be in (0, 1], got {max_warmup_fraction}")
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.max_lr = lr
        self.min_lr = lr * min_lr_factor
        self.total_steps = max(total_steps, 2)
        self.max_warmup_steps = max(int(max_warmup_fraction * self.total_steps), 1)
        self.growth = (self.max_lr / self.min_lr) ** (1.0 / self.max_warmup_steps)
        self.check_every = check_every
        self.patience = patience
        self.confidence = confidence
        self.repeats = repeats
        self.grid_points = grid_points
        self.condition_points = condition_points
        self.smoother = GPSmoother()
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self.losses: list[float | torch.Tensor] = []
        self.votes_in_a_row = 0
        self.decay_start: int | None = None
        self.decay_lr = 0.0
        self.lr = self.min_lr

    @property
    def warming_up(self) -> bool:
        return self.decay_start is None

    def step(self, loss: float | torch.Tensor) -> None:
        """``loss`` may be a device tensor (a compiled update's): it is read with the others
        at the next minimum check, not now."""
        self.losses.append(loss)
        steps = len(self.losses)
        decay_start = self.decay_start
        if decay_start is not None:  # past the warm-up
            progress = min((steps - decay_start) / max(self.total_steps - decay_start, 1), 1.0)
            self.lr = 0.5 * self.decay_lr * (1.0 + math.cos(math.pi * progress))
            return
        if steps >= self.max_warmup_steps:
            self._start_decay(steps, self.min_lr * self.growth**steps)
            return
        if steps % self.check_every == 0:
            minimum_passed, argmin_step = self._minimum_passed()
            self.votes_in_a_row = self.votes_in_a_row + 1 if minimum_passed else 0
            if self.votes_in_a_row >= self.patience:
                self._start_decay(steps, self.min_lr * self.growth**argmin_step)
                return
        self.lr = self.min_lr * self.growth**steps

    def _start_decay(self, steps: int, lr: float) -> None:
        self.decay_start = steps
        self.decay_lr = lr
        self.lr = lr

    def _read_losses(self) -> list[float]:
        """The losses as numbers, device tensors among them read in one transfer."""
        pending = [index for index, loss in enumerate(self.losses) if torch.is_tensor(loss)]
        if pending:
            values = torch.stack([torch.as_tensor(self.losses[index]).detach().float() for index in pending]).tolist()
            for index, value in zip(pending, values, strict=True):
                self.losses[index] = value
        return [float(loss) for loss in self.losses]

    def _minimum_passed(self) -> tuple[bool, int]:
        """Whether most posterior repeats are confident the minimum is past, and where it is."""
        y = torch.tensor(self._read_losses(), dtype=torch.float64)
        finite = torch.isfinite(y)
        count = len(y)
        x = torch.arange(count, dtype=torch.float64) / max(count - 1, 1)
        x, y = x[finite], y[finite]
        if len(y) < 3:
            return False, 0
        spread = y.std().clamp_min(1e-12)
        y = (y - y.mean()) / spread
        outputscale, noise = self.smoother.fit(x, y, self.generator)
        grid = torch.linspace(0.0, 1.0, self.grid_points, dtype=torch.float64)
        votes = 0
        mean_sum = torch.zeros_like(grid)
        for _ in range(self.repeats):
            pick = _subsample(len(x), self.condition_points, self.generator)
            mean, variance, with_last = self.smoother.posterior(x[pick], y[pick], grid, outputscale, noise)
            mean_sum += mean
            gap_variance = (variance[:-1] + variance[-1] - 2.0 * with_last[:-1]).clamp_min(1e-12)
            below_now = torch.special.ndtr((mean[-1] - mean[:-1]) / gap_variance.sqrt())
            votes += int(below_now.max() > self.confidence)
        argmin_step = int(mean_sum.argmin()) * (count - 1) // (self.grid_points - 1)
        return votes * 2 > self.repeats, argmin_step

    def state_dict(self) -> dict[str, Any]:
        return {
            "losses": list(self._read_losses()),
            "votes_in_a_row": self.votes_in_a_row,
            "decay_start": self.decay_start,
            "decay_lr": self.decay_lr,
            "lr": self.lr,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = list(state["losses"])
        self.votes_in_a_row = int(state["votes_in_a_row"])
        self.decay_start = state["decay_start"]
        self.decay_lr = float(state["decay_lr"])
        self.lr = float(state["lr"])
        self.generator.set_state(state["generator"])


def make_schedule(name: str, lr: float, total_steps: int, autowu_check_every: int = 100, seed: int = 0) -> Schedule:
    """Build the schedule called ``name`` (one of :data:`SCHEDULES`)."""
    if name == "constant":
        return ConstantSchedule(lr)
    if name == "cosine":
        return CosineSchedule(lr, total_steps)
    if name == "autowu":
        return AutoWarmup(lr, total_steps, check_every=autowu_check_every, seed=seed)
    raise ValueError(f"schedule={name!r} is not known; choose one of {list(SCHEDULES)}")
