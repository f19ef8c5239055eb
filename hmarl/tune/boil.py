"""BOIL: Bayesian optimisation for iterative learning (Nguyen, Schulze, Osborne, 2020).

A learning curve is compressed into one score by a logistic preference over its
course; a Gaussian process over (hyperparameters x, training length t) models the
scores, a linear model the cost, and the next (x, t) maximises expected improvement
per unit of cost. Each evaluated curve also lends the GP "virtual" observations at
shorter lengths, chosen where the GP is least sure, until the kernel matrix grows
ill-conditioned. The GP, its fit and the acquisition's optimiser are gpytorch's and
botorch's; this module holds what is BOIL's own.

Every input is normalised: x to the unit cube, t to ``t / t_max`` (the curve's share
of the longest run), so the constants below are the reference code's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.analytic import LogExpectedImprovement
from botorch.exceptions import OptimizationWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.optim import optimize_acqf
from botorch.optim.closures import ForwardBackwardClosure
from botorch.optim.core import scipy_minimize
from gpytorch.constraints import Interval
from gpytorch.kernels import RBFKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import nn

#: The reference kernel is exp(-d²/ℓ) with ℓx in [0.03, 0.3] and ℓt in [0.3, 0.6];
#: gpytorch's RBF is exp(-d²/(2ℓ²)), so its lengthscale is sqrt(ℓ/2).
X_LENGTHSCALE = (0.03, 0.3)
T_LENGTHSCALE = (0.3, 0.6)
X_LENGTHSCALE_INIT = 0.02
T_LENGTHSCALE_INIT = 0.2
#: Observation noise of the standardised scores.
NOISE = 5e-4
#: Bounds and initial values of the logistic preference's midpoint and growth.
M0_BOUNDS = (-2.0, 3.0)
G0_BOUNDS = (0.5, 2.0)
M0_INIT, G0_INIT = 0.0, 1.0
#: Random starts of the joint fit before L-BFGS-B.
FIT_STARTS = 20
#: A curve with no positive value is shifted up by this before it is weighted.
NONPOSITIVE_SHIFT = 500.0
#: The logistic's argument runs over [-6, 6] along the longest curve.
LOGISTIC_SPAN = 6.0
#: Virtual observations per evaluated curve: up to int(10 * t_norm).
MAX_AUGMENTATION = 10
#: Stop augmenting when ln cond(K) would exceed this.
MAX_LOG_CONDITION = 15.0
#: ... or when the predictive variance is below the noise plus this.
MIN_VARIANCE_GAP = 1e-3
#: Added to the predicted cost before its log, so near-free points do not dominate.
COST_OFFSET = 0.1


def _rbf_lengthscale(reference: float) -> float:
    return math.sqrt(reference / 2.0)


def logistic_weights(length: int, max_length: int, m0: float, g0: float) -> np.ndarray:
    """The logistic preference l(u) = 1 / (1 + exp(-g0 (u - m0))) over the first ``length``
    points of u = linspace(-6, 6, max_length)."""
    u = np.linspace(-LOGISTIC_SPAN, LOGISTIC_SPAN, max_length)[:length]
    return 1.0 / (1.0 + np.exp(-g0 * (u - m0)))


def window_start(length: int, m0: float) -> int:
    """Index from which the weighted curve is averaged: int((m0 + 4) * length / 12)."""
    return min(int((m0 + 4.0) * length / 12.0), length - 1)


def compress_curve(curve: Sequence[float], max_length: int, m0: float = M0_INIT, g0: float = G0_INIT) -> float:
    """One score for a learning curve: the mean of curve * logistic preference from
    :func:`window_start` to the end. A curve with no positive value is shifted by +500."""
    values = np.asarray(curve, dtype=np.float64)
    if values.size == 0:
        raise ValueError("curve is empty; a learning curve needs at least one evaluation")
    if values.size > max_length:
        raise ValueError(f"curve has {values.size} points, more than max_length={max_length}")
    if values.max() <= 0:
        values = values + NONPOSITIVE_SHIFT
    weighted = values * logistic_weights(values.size, max_length, m0, g0)
    return float(weighted[window_start(values.size, m0) :].mean())


class CurveCompression(nn.Module):
    """:func:`compress_curve` as a module whose m0 and g0 are parameters within their
    bounds, so the GP's marginal likelihood can be maximised over them and the kernel
    together (the window start is piecewise constant in m0: no gradient flows there)."""

    def __init__(self, max_length: int) -> None:
        super().__init__()
        self.max_length = max_length
        self.m0_constraint = Interval(*M0_BOUNDS)
        self.g0_constraint = Interval(*G0_BOUNDS)
        self.raw_m0 = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.raw_g0 = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.set(M0_INIT, G0_INIT)

    @property
    def m0(self) -> torch.Tensor:
        return self.m0_constraint.transform(self.raw_m0)

    @property
    def g0(self) -> torch.Tensor:
        return self.g0_constraint.transform(self.raw_g0)

    def set(self, m0: float, g0: float) -> None:
        with torch.no_grad():
            self.raw_m0.copy_(self.m0_constraint.inverse_transform(torch.tensor(m0, dtype=torch.float64)))
            self.raw_g0.copy_(self.g0_constraint.inverse_transform(torch.tensor(g0, dtype=torch.float64)))

    def forward(self, curves: Sequence[np.ndarray]) -> torch.Tensor:
        u_all = torch.linspace(-LOGISTIC_SPAN, LOGISTIC_SPAN, self.max_length, dtype=torch.float64)
        m0, g0 = self.m0, self.g0
        scores = []
        for curve in curves:
            values = torch.as_tensor(curve, dtype=torch.float64)
            if values.max() <= 0:
                values = values + NONPOSITIVE_SHIFT
            weights = torch.sigmoid(g0 * (u_all[: values.numel()] - m0))
            start = window_start(values.numel(), float(m0.detach()))
            scores.append((values * weights)[start:].mean())
        return torch.stack(scores)


@dataclass
class Observation:
    """One point of the GP: x in the unit cube, t as a share of t_max, the curve up to t,
    and its cost in seconds; ``virtual`` points come from a longer curve's prefix."""

    x: np.ndarray
    t: float
    curve: np.ndarray
    cost: float
    virtual: bool = False


class CostModel:
    """Training cost c(x, t) by least-squares linear regression on [1, x, t]."""

    def __init__(self) -> None:
        self.coef: np.ndarray | None = None

    def fit(self, inputs: np.ndarray, costs: np.ndarray) -> CostModel:
        design = np.hstack([np.ones((len(inputs), 1)), inputs])
        self.coef, *_ = np.linalg.lstsq(design, np.asarray(costs, dtype=np.float64), rcond=None)
        return self

    def predict(self, inputs: np.ndarray | torch.Tensor) -> torch.Tensor:
        if self.coef is None:
            raise RuntimeError("the cost model has not been fitted")
        inputs = torch.as_tensor(inputs, dtype=torch.float64)
        coef = torch.as_tensor(self.coef, dtype=inputs.dtype)
        return coef[0] + inputs @ coef[1:]


class CostAwareLogEI(AcquisitionFunction):
    """log EI(x, t) - log(max(0, c(x, t) - c_paid) + 0.1): expected improvement per unit of
    cost. ``paid`` is the cost already spent on a curve that the point would continue
    (zero for a new one)."""

    def __init__(self, model: Model, best_f: float, cost: CostModel, paid: float = 0.0) -> None:
        super().__init__(model)
        self.log_ei = LogExpectedImprovement(model, best_f=best_f, maximize=True)
        self.cost = cost
        self.paid = paid

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        cost = self.cost.predict(X.squeeze(-2)) - self.paid
        return self.log_ei(X) - torch.log(cost.clamp_min(0.0) + COST_OFFSET)


def product_kernel(dim: int) -> RBFKernel:
    """exp(-|x - x'|² / ℓx) * exp(-(t - t')² / ℓt) over inputs [x (dim), t], as the
    reference's isotropic SE kernel in x times an SE kernel in t."""
    x_kernel = RBFKernel(
        active_dims=tuple(range(dim)),
        lengthscale_constraint=Interval(*map(_rbf_lengthscale, X_LENGTHSCALE)),
    )
    t_kernel = RBFKernel(active_dims=(dim,), lengthscale_constraint=Interval(*map(_rbf_lengthscale, T_LENGTHSCALE)))
    # The initial lengthscales lie below the bounds; the constraint clamps them to the nearest bound.
    x_kernel.lengthscale = max(_rbf_lengthscale(X_LENGTHSCALE_INIT), _rbf_lengthscale(X_LENGTHSCALE[0]))
    t_kernel.lengthscale = max(_rbf_lengthscale(T_LENGTHSCALE_INIT), _rbf_lengthscale(T_LENGTHSCALE[0]))
    return x_kernel * t_kernel


@dataclass
class Boil:
    """The BOIL model over ``dim`` hyperparameters (unit cube) and t in [t_min, 1].

    ``max_length`` is the number of points of a curve run to t = 1. :meth:`add` records an
    evaluated curve and its virtual observations; :meth:`suggest` fits the GP and returns
    the next (x, t) and, if that point continues an evaluated curve, its index.
    """

    dim: int
    t_min: float
    max_length: int
    seed: int = 0
    observations: list[Observation] = field(default_factory=list)
    m0: float = M0_INIT
    g0: float = G0_INIT
    fits: int = 0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim={self.dim} is not valid; BOIL needs at least one hyperparameter")
        if not 0.0 < self.t_min <= 1.0:
            raise ValueError(f"t_min={self.t_min} is not valid; it must be in (0, 1]")
        if self.max_length < 1:
            raise ValueError(f"max_length={self.max_length} is not valid; it must be >= 1")
        self.rng = np.random.default_rng(self.seed)

    @property
    def initial_design(self) -> int:
        """Random points run to t_max before the GP takes over: 3 per dimension of x."""
        return 3 * self.dim

    def real(self) -> list[Observation]:
        return [obs for obs in self.observations if not obs.virtual]

    def random_point(self) -> np.ndarray:
        return self.rng.random(self.dim)

    # --- the GP -------------------------------------------------------------------

    def _inputs(self) -> torch.Tensor:
        return torch.tensor(np.array([[*obs.x, obs.t] for obs in self.observations]), dtype=torch.float64)

    def fit(self, joint: bool | None = None) -> SingleTaskGP:
        """The GP fitted to the observations. With ``joint`` (by default whenever the
        number of real observations is a multiple of 2 * (dim + 1), as the reference
        re-fits), m0 and g0 are fitted with the lengthscales by maximising the marginal
        likelihood: 20 random starts, the best refined by L-BFGS-B."""
        if not self.observations:
            raise RuntimeError("no observations to fit")
        if joint is None:
            joint = len(self.real()) % (2 * (self.dim + 1)) == 0 or self.fits == 0
        inputs = self._inputs()
        curves = [obs.curve for obs in self.observations]
        compression = CurveCompression(self.max_length)
        compression.set(self.m0, self.g0)
        model = SingleTaskGP(
            inputs,
            torch.zeros(len(inputs), 1, dtype=torch.float64),
            train_Yvar=torch.full((len(inputs), 1), NOISE, dtype=torch.float64),
            covar_module=product_kernel(self.dim).to(torch.float64),
            outcome_transform=None,
        )
        model.mean_module.constant.requires_grad_(False)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        if joint:
            self._fit_joint(model, mll, compression, inputs, curves)
            self.m0, self.g0 = float(compression.m0.detach()), float(compression.g0.detach())
        targets = self._standardised(compression, curves)
        # gpytorch ships no types, so mypy reads its methods through nn.Module's __getattr__.
        model.set_train_data(inputs, targets.detach(), strict=False)  # type: ignore[operator]
        if not joint:
            fit_gpytorch_mll(mll)
        model.eval()
        self.fits += 1
        return model

    @staticmethod
    def _standardised(compression: CurveCompression, curves: Sequence[np.ndarray]) -> torch.Tensor:
        scores = compression(curves)
        if scores.numel() < 2:
            return scores - scores.detach()
        return (scores - scores.mean()) / scores.std().clamp_min(1e-9)

    def _fit_joint(
        self,
        model: SingleTaskGP,
        mll: ExactMarginalLogLikelihood,
        compression: CurveCompression,
        inputs: torch.Tensor,
        curves: Sequence[np.ndarray],
    ) -> None:
        model.add_module("compression", compression)
        model.train()

        def loss() -> torch.Tensor:
            targets = self._standardised(compression, curves)
            model.set_train_data(inputs, targets, strict=False)  # type: ignore[operator]  # as above
            return -mll(model(inputs), targets).sum()

        kernels = list(model.covar_module.kernels)
        best, best_loss = None, math.inf
        for start in range(FIT_STARTS):
            if start:
                compression.set(self.rng.uniform(*M0_BOUNDS), self.rng.uniform(*G0_BOUNDS))
                for kernel, bounds in zip(kernels, (X_LENGTHSCALE, T_LENGTHSCALE), strict=True):
                    kernel.lengthscale = _rbf_lengthscale(self.rng.uniform(*bounds))
            with torch.no_grad():
                value = float(loss())
            if value < best_loss:
                best_loss = value
                best = {name: value.detach().clone() for name, value in model.state_dict().items()}
        if best is None:
            raise RuntimeError(f"the GP's marginal likelihood was not finite from any of {FIT_STARTS} starts")
        model.load_state_dict(best)
        parameters: dict[str, torch.Tensor] = {name: p for name, p in model.named_parameters() if p.requires_grad}
        closure = ForwardBackwardClosure(forward=loss, parameters=parameters)
        scipy_minimize(closure=closure, parameters=parameters, method="L-BFGS-B", options={"maxiter": 30 * (self.dim + 1)})
        del model.compression

    # --- acquisition --------------------------------------------------------------

    def cost_model(self) -> CostModel:
        inputs = np.array([[*obs.x, obs.t] for obs in self.observations])
        return CostModel().fit(inputs, np.array([obs.cost for obs in self.observations]))

    def suggest(
        self,
        model: SingleTaskGP | None = None,
        exclude: AbstractSet[int] = frozenset(),
        pending: Sequence[tuple[np.ndarray, float]] = (),
    ) -> tuple[np.ndarray, float, int | None]:
        """The next (x, t) by cost-aware log EI, with the incumbent the GP mean's maximum
        over the observations. Besides new points it weighs continuing each evaluated
        curve to a longer t, at the cost of only the extra length; the returned index is
        that curve's (None for a new point); curves in ``exclude`` are not continued.

        ``pending`` holds the (x, t) of trials still running. The reference suggests one
        point at a time; with several trials at once, each pending point is taken as
        observed at the lowest score seen so far (the "constant liar", Ginsbourger et al.
        2010, in its pessimistic form): the GP is conditioned on that value there, which
        lowers the mean and the variance around the running trial, so the next suggestion
        goes elsewhere instead of duplicating it. Believing the GP's own mean there
        instead moves the next point only slightly when the mean is above the incumbent.
        """
        fitted = model or self.fit()
        cost = self.cost_model()
        with torch.no_grad():
            best_f = float(fitted.posterior(self._inputs()).mean.max())
            acquired: Model = fitted
            if pending:
                points = torch.tensor(np.array([[*x, t] for x, t in pending]), dtype=torch.float64)
                lie = torch.full((len(points), 1), float(fitted.train_targets.min()), dtype=torch.float64)
                acquired = fitted.condition_on_observations(points, lie, noise=torch.full_like(lie, NOISE))
        bounds = torch.tensor([[0.0] * self.dim + [self.t_min], [1.0] * (self.dim + 1)], dtype=torch.float64)
        with warnings.catch_warnings():
            # A failed local run is retried from other starts by botorch itself; its warning is noise here.
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", OptimizationWarning)
            candidate, value = optimize_acqf(
                CostAwareLogEI(acquired, best_f, cost),
                bounds=bounds,
                q=1,
                num_restarts=5,
                raw_samples=256,
            )
        if value is None:
            raise RuntimeError("the acquisition's optimiser returned no value")
        best: tuple[np.ndarray, float, int | None] = (candidate[0].numpy(), float(value), None)
        steps = torch.arange(1, self.max_length + 1, dtype=torch.float64) / self.max_length
        steps = steps[steps >= self.t_min - 1e-9]
        for index, obs in enumerate(self.observations):
            longer = steps[steps > obs.t + 1e-9]
            if obs.virtual or not len(longer) or index in exclude or self._continued(index):
                continue
            points = torch.cat([torch.tensor(obs.x).expand(len(longer), -1), longer[:, None]], dim=1)
            paid = float(cost.predict(np.array([[*obs.x, obs.t]]))[0])
            with torch.no_grad():
                values = CostAwareLogEI(acquired, best_f, cost, paid)(points[:, None, :])
            k = int(values.argmax())
            if float(values[k]) > best[1]:
                best = (points[k].numpy(), float(values[k]), index)
        x_t, _, parent = best
        return np.clip(x_t[: self.dim], 0.0, 1.0), float(np.clip(x_t[self.dim], self.t_min, 1.0)), parent

    def _continued(self, index: int) -> bool:
        """Whether a longer real curve of the same x exists (the curve was already continued)."""
        obs = self.observations[index]
        return any(not other.virtual and other.t > obs.t and np.array_equal(other.x, obs.x) for other in self.observations)

    # --- selective augmentation ---------------------------------------------------

    def add(self, x: np.ndarray, t: float, curve: Sequence[float], cost: float, augment: bool = True) -> int:
        """Record the curve evaluated at (x, t) and up to int(10 t) virtual observations
        from its prefixes; returns how many virtual observations were added."""
        values = np.asarray(curve, dtype=np.float64)
        if values.size == 0:
            raise ValueError("curve is empty; a learning curve needs at least one evaluation")
        self.observations.append(Observation(np.asarray(x, dtype=np.float64), float(t), values, float(cost)))
        if not augment or len(self.observations) < 2:
            return 0
        return self.augment(len(self.observations) - 1)

    def augment(self, index: int) -> int:
        """Virtual observations from the curve of observation ``index``: one at a time at
        the prefix length of largest GP variance, stopping at int(10 t) of them, when
        ln cond(K + noise I) would exceed 15 with the next one, when the variance falls
        below noise + 1e-3, or when a length repeats. A virtual observation's cost is the
        curve's cost times its t, as the reference estimates it."""
        source = self.observations[index]
        limit = int(MAX_AUGMENTATION * source.t)
        # The prefix lengths of the curve, as shares of t_max, before the last point.
        lengths = [(k + 1, source.t * (k + 1) / source.curve.size) for k in range(source.curve.size - 1)]
        if not limit or not lengths:
            return 0
        model = self.fit(joint=False)
        kernel = model.covar_module
        added = 0
        while added < limit:
            inputs = self._inputs()
            candidates = torch.tensor([[*source.x, t] for _, t in lengths], dtype=torch.float64)
            with torch.no_grad():
                gram = kernel(inputs).to_dense() + NOISE * torch.eye(len(inputs), dtype=torch.float64)
                cross = kernel(candidates, inputs).to_dense()
                prior = kernel(candidates, diag=True)
                variance = prior - (cross * torch.linalg.solve(gram, cross.T).T).sum(-1)
            k = int(variance.argmax())
            size, t = lengths[k]
            if float(variance[k]) < NOISE + MIN_VARIANCE_GAP:
                break
            if any(np.array_equal(obs.x, source.x) and abs(obs.t - t) < 1e-12 for obs in self.observations):
                break
            grown = torch.cat([inputs, candidates[k : k + 1]])
            with torch.no_grad():
                gram = kernel(grown).to_dense() + NOISE * torch.eye(len(grown), dtype=torch.float64)
                log_condition = math.log(float(torch.linalg.cond(gram)))
            if log_condition > MAX_LOG_CONDITION:
                break
            self.observations.append(Observation(source.x, t, source.curve[:size], source.cost * t, virtual=True))
            added += 1
        return added

    def log_condition(self, model: SingleTaskGP | None = None) -> float:
        """ln cond(K + noise I) of the observations under ``model``'s kernel."""
        model = model or self.fit(joint=False)
        inputs = self._inputs()
        with torch.no_grad():
            gram = model.covar_module(inputs).to_dense() + NOISE * torch.eye(len(inputs), dtype=torch.float64)
        return math.log(float(torch.linalg.cond(gram)))

    # --- persistence --------------------------------------------------------------

    def state(self) -> dict:
        return {
            "observations": [
                {"x": obs.x.tolist(), "t": obs.t, "curve": obs.curve.tolist(), "cost": obs.cost, "virtual": obs.virtual}
                for obs in self.observations
            ],
            "m0": self.m0,
            "g0": self.g0,
            "fits": self.fits,
            "rng": self.rng.bit_generator.state,
        }

    def load(self, state: dict) -> None:
        self.observations = [
            Observation(np.array(o["x"]), o["t"], np.array(o["curve"]), o["cost"], o["virtual"]) for o in state["observations"]
        ]
        self.m0, self.g0, self.fits = state["m0"], state["g0"], state["fits"]
        self.rng.bit_generator.state = state["rng"]
