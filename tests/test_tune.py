"""BOIL's parts (curve compression, GP and acquisition, cost model, augmentation) and the
checks of a study's input; no Ray cluster here (tests/test_tune_ray.py has those)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hmarl.tune import missing_extra

MISSING = missing_extra()
if MISSING:
    pytest.skip(f"the tune extra is not installed (missing {MISSING}): pip install -e '.[tune]'", allow_module_level=True)

import torch  # noqa: E402

from hmarl.tune import boil  # noqa: E402
from hmarl.tune.boil import Boil, CostAwareLogEI, CostModel, CurveCompression, compress_curve  # noqa: E402
from hmarl.tune.space import build_space, parse_range  # noqa: E402
from hmarl.trainers import dqn  # noqa: E402


def sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u))


# --- curve compression ------------------------------------------------------------


def test_compression_matches_hand_computed_values():
    # u = linspace(-6, 6, 4) = [-6, -2, 2, 6]; m0 = 0, g0 = 1: the window starts at int(4 * 4 / 12) = 1.
    expected = (2 * sigmoid(-2) + 3 * sigmoid(2) + 4 * sigmoid(6)) / 3
    assert compress_curve([1, 2, 3, 4], max_length=4) == pytest.approx(expected, rel=1e-12)
    # A curve of 2 of 4 points weighs the first two u's; the window starts at int(4 * 2 / 12) = 0.
    assert compress_curve([1, 2], max_length=4) == pytest.approx((sigmoid(-6) + 2 * sigmoid(-2)) / 2, rel=1e-12)
    # m0 = 3, g0 = 2: the window starts at int(7 * 4 / 12) = 2.
    expected = (3 * sigmoid(2 * (2 - 3)) + 4 * sigmoid(2 * (6 - 3))) / 2
    assert compress_curve([1, 2, 3, 4], max_length=4, m0=3.0, g0=2.0) == pytest.approx(expected, rel=1e-12)
    # A curve with no positive value is shifted by +500 first.
    assert compress_curve([-1, -2], max_length=2) == pytest.approx((499 * sigmoid(-6) + 498 * sigmoid(6)) / 2, rel=1e-12)


def test_compression_module_agrees_and_passes_gradients_to_m0_g0():
    rng = np.random.default_rng(0)
    curves = [rng.normal(size=n) * 10 for n in (3, 7, 12)]
    module = CurveCompression(max_length=12)
    module.set(1.3, 0.7)
    scores = module(curves)
    for curve, score in zip(curves, scores, strict=True):
        assert float(score.detach()) == pytest.approx(compress_curve(curve, 12, 1.3, 0.7), rel=1e-9)
    scores.sum().backward()
    assert module.raw_m0.grad is not None and module.raw_g0.grad is not None
    assert float(module.raw_m0.grad) != 0.0 and float(module.raw_g0.grad) != 0.0


def test_compression_refuses_bad_curves():
    with pytest.raises(ValueError, match="curve is empty"):
        compress_curve([], max_length=4)
    with pytest.raises(ValueError, match="max_length=2"):
        compress_curve([1, 2, 3], max_length=2)


# --- GP and acquisition ------------------------------------------------------------

OPTIMUM = np.array([0.7, 0.3])
CURVE_POINTS = 20


def synthetic_curve(x: np.ndarray, t: float) -> np.ndarray:
    """A learning curve that rises to a level peaked at OPTIMUM, observed up to t."""
    n = max(1, round(t * CURVE_POINTS))
    level = 100.0 * math.exp(-float(np.sum((np.asarray(x) - OPTIMUM) ** 2)) / 0.05)
    return level * (1.0 - np.exp(-5.0 * np.arange(1, n + 1) / CURVE_POINTS))


def test_gp_and_acquisition_find_the_optimum_of_known_curves():
    model = Boil(dim=2, t_min=0.2, max_length=CURVE_POINTS, seed=1)
    for _ in range(model.initial_design):
        x = model.random_point()
        model.add(x, 1.0, synthetic_curve(x, 1.0), cost=1.0)
    initial_best = max(np.linalg.norm(obs.x - OPTIMUM) for obs in model.real())
    for _ in range(10):
        x, t, _ = model.suggest()
        assert 0.2 - 1e-9 <= t <= 1.0 and np.all((0 <= x) & (x <= 1))
        model.add(x, t, synthetic_curve(x, t), cost=t)
    distance = min(np.linalg.norm(obs.x - OPTIMUM) for obs in model.real())
    assert distance < 0.08, f"closest point {distance:.3f} from the optimum (initial design: {initial_best:.3f})"
    assert boil.M0_BOUNDS[0] <= model.m0 <= boil.M0_BOUNDS[1]
    assert boil.G0_BOUNDS[0] <= model.g0 <= boil.G0_BOUNDS[1]


def test_fitted_kernel_respects_the_reference_bounds():
    model = Boil(dim=2, t_min=0.2, max_length=CURVE_POINTS, seed=0)
    for _ in range(6):
        x = model.random_point()
        model.add(x, 1.0, synthetic_curve(x, 1.0), cost=1.0, augment=False)
    gp = model.fit(joint=True)
    x_kernel, t_kernel = gp.covar_module.kernels
    # gpytorch's RBF lengthscale l is the reference's sqrt(l_ref / 2).
    l_x = 2 * float(x_kernel.lengthscale) ** 2
    l_t = 2 * float(t_kernel.lengthscale) ** 2
    assert boil.X_LENGTHSCALE[0] - 1e-9 <= l_x <= boil.X_LENGTHSCALE[1] + 1e-9
    assert boil.T_LENGTHSCALE[0] - 1e-9 <= l_t <= boil.T_LENGTHSCALE[1] + 1e-9


def test_continuing_a_curve_is_weighed_at_its_extra_cost():
    model = Boil(dim=1, t_min=0.1, max_length=10, seed=0)
    for x, t, cost in ((0.1, 1.0, 10.0), (0.5, 1.0, 10.0), (0.9, 1.0, 10.0), (0.7, 0.2, 2.0)):
        curve = synthetic_curve(np.array([x, 0.3]), t)[: round(t * 10)]
        model.add(np.array([x]), t, curve, cost=cost, augment=False)
    gp = model.fit()
    cost = model.cost_model()
    point = torch.tensor([[[0.7, 0.6]]], dtype=torch.float64)
    full = float(cost.predict(point.squeeze(-2))[0])
    paid = float(cost.predict(np.array([[0.7, 0.2]]))[0])
    new = float(CostAwareLogEI(gp, 0.0, cost)(point))
    continued = float(CostAwareLogEI(gp, 0.0, cost, paid)(point))
    assert continued - new == pytest.approx(
        math.log(full + boil.COST_OFFSET) - math.log(full - paid + boil.COST_OFFSET), abs=1e-9
    )
    # A curve being continued by a running trial is not offered again.
    _, _, parent = model.suggest(gp, exclude={3})
    assert parent != 3


def test_running_trials_push_the_next_suggestion_away():
    # With two trials at once, a suggestion made while another runs must not repeat it.
    for seed in range(4):
        model = Boil(dim=2, t_min=0.2, max_length=CURVE_POINTS, seed=seed)
        for _ in range(model.initial_design):
            x = model.random_point()
            model.add(x, 1.0, synthetic_curve(x, 1.0), cost=1.0)
        gp = model.fit()
        torch.manual_seed(0)
        first = model.suggest(gp)
        torch.manual_seed(0)
        again = model.suggest(gp)
        torch.manual_seed(0)
        beside = model.suggest(gp, pending=[(first[0], first[1])])
        point = np.r_[first[0], first[1]]
        assert np.allclose(np.r_[again[0], again[1]], point), "the same model and seed must suggest the same point"
        distance = float(np.linalg.norm(np.r_[beside[0], beside[1]] - point))
        assert distance > 0.1, f"seed {seed}: the suggestion beside a running trial is {distance:.3f} from it"


# --- cost model --------------------------------------------------------------------


def test_cost_model_predicts_a_linear_cost():
    rng = np.random.default_rng(0)
    inputs = rng.random((12, 3))
    costs = 2.0 + inputs @ np.array([3.0, -1.0, 5.0])
    cost = CostModel().fit(inputs, costs)
    tests = rng.random((5, 3))
    assert cost.predict(tests).numpy() == pytest.approx(2.0 + tests @ np.array([3.0, -1.0, 5.0]), abs=1e-9)


def test_acquisition_is_log_ei_minus_log_cost():
    model = Boil(dim=1, t_min=0.1, max_length=10, seed=0)
    for x, level in ((0.2, 10.0), (0.8, 50.0), (0.5, 30.0)):
        model.add(np.array([x]), 1.0, np.full(10, level), cost=4.0 + 2.0 * x, augment=False)
    gp = model.fit()
    cost = model.cost_model()
    point = torch.tensor([[[0.6, 1.0]]], dtype=torch.float64)
    value = CostAwareLogEI(gp, 0.0, cost)(point)
    log_ei = CostAwareLogEI(gp, 0.0, cost).log_ei(point)
    predicted = float(cost.predict(point.squeeze(-2))[0])
    assert predicted == pytest.approx(5.2, abs=1e-9)
    assert float(value) == pytest.approx(float(log_ei) - math.log(predicted + boil.COST_OFFSET), abs=1e-9)


# --- selective augmentation --------------------------------------------------------


def _model_with_curves() -> Boil:
    model = Boil(dim=1, t_min=0.1, max_length=40, seed=0)
    for x in (0.1, 0.5, 0.9):
        model.add(np.array([x]), 1.0, np.linspace(1, 40, 40) * (1 + x), cost=1.0, augment=False)
    return model


def test_augmentation_adds_up_to_ten_t_points_by_variance():
    model = _model_with_curves()
    added = model.add(np.array([0.3]), 0.5, np.linspace(1, 20, 20), cost=1.0)
    assert 1 <= added <= int(boil.MAX_AUGMENTATION * 0.5)
    virtual = [obs for obs in model.observations if obs.virtual]
    assert len(virtual) == added
    for obs in virtual:
        assert obs.x[0] == 0.3 and obs.t < 0.5
        assert obs.curve.size == round(obs.t / 0.5 * 20)
        assert obs.cost == pytest.approx(1.0 * obs.t)
    assert len({obs.t for obs in virtual}) == added


def test_augmentation_stops_at_the_condition_number_bound(monkeypatch):
    model = _model_with_curves()
    model.add(np.array([0.3]), 1.0, np.linspace(1, 40, 40) * 2.0, cost=1.0, augment=False)
    bound = model.log_condition(model.fit(joint=False)) + 0.5
    monkeypatch.setattr(boil, "MAX_LOG_CONDITION", bound)
    added = model.augment(_last_real(model))
    assert added < int(boil.MAX_AUGMENTATION * 1.0), "the bound should have stopped the augmentation"
    after = model.log_condition(model.fit(joint=False))
    assert after <= bound
    # One more virtual point at the next length of largest variance would cross the bound.
    monkeypatch.setattr(boil, "MAX_LOG_CONDITION", 1e9)
    model.augment(_last_real(model))
    assert model.log_condition(model.fit(joint=False)) > bound


def _last_real(model: Boil) -> int:
    return max(index for index, obs in enumerate(model.observations) if not obs.virtual)


def test_augmentation_with_the_reference_bound_keeps_the_kernel_conditioned():
    model = _model_with_curves()
    for x in (0.2, 0.4, 0.6):
        model.add(np.array([x]), 1.0, np.linspace(1, 40, 40), cost=1.0)
    assert model.log_condition() <= boil.MAX_LOG_CONDITION


# --- the search space --------------------------------------------------------------


def _space(params, length=None, options=("--eval-every", "1000")):
    return build_space(dqn.Config, params, length, list(options))


def test_space_of_trainer_fields():
    space = _space(
        {
            "lr": {"low": 1e-5, "high": 1e-2, "log": True},
            "gamma": {"low": 0.8, "high": 1.0},
            "batch_size": {"low": 32, "high": 256},
        },
        {"field": "total_steps", "low": 2000, "high": 20000},
    )
    lr, _gamma, batch = space.params
    assert lr.log and not lr.integer and batch.integer
    assert lr.value(0.5) == pytest.approx(math.sqrt(1e-5 * 1e-2))
    assert isinstance(batch.value(0.3), int)
    assert space.max_curve_length == 20 and space.round_length(4400) == 4000


@pytest.mark.parametrize(
    ("params", "length", "message"),
    [
        ({"lerning_rate": {"low": 1e-4, "high": 1e-3}}, None, "'lerning_rate' is not a field"),
        ({"lr": {"low": 1e-3, "high": 1e-3}}, None, "param lr: the range 0.001:0.001 is empty"),
        ({"lr": {"low": 1e-2, "high": 1e-3}}, None, "param lr: the range 0.01:0.001 is inverted"),
        ({"lr": {"low": 0.0, "high": 1e-3, "log": True}}, None, "log range must be positive"),
        ({"gamma": {"low": 0.9, "high": 1.5}}, None, "gamma=1.5 is not valid"),
        ({"env": {"low": 0, "high": 1}}, None, "env is str"),
        ({"lr": {"low": 1e-4, "high": 1e-3}}, {"field": "total_steps", "low": 500, "high": 1000}, "LOW must be >= eval_every"),
        ({"lr": {"low": 1e-4, "high": 1e-3}}, {"field": "lr", "low": 1, "high": 2}, "integer field"),
    ],
)
def test_space_refuses_bad_ranges(params, length, message):
    with pytest.raises(ValueError, match=message):
        _space(params, length)


def test_space_refuses_bad_options_and_range_text():
    with pytest.raises(ValueError, match="options"):
        _space({"lr": {"low": 1e-4, "high": 1e-3}}, options=["--no-such-option", "1"])
    with pytest.raises(ValueError, match="param='lr=1e-4' is not valid"):
        parse_range("param", "lr=1e-4")
    with pytest.raises(ValueError, match="LOW and HIGH must be numbers"):
        parse_range("param", "lr=a:b")
    assert parse_range("length", "total-steps=1:2:log") == ("total_steps", {"low": 1.0, "high": 2.0, "log": True})


def test_tune_command_refuses_bad_input_before_any_work(tmp_path, capsys):
    from hmarl.cli import main

    base = ["tune", "dqn", "--storage", str(tmp_path), "--max-trials", "2", "--searcher", "random"]
    cases = [
        (["--param", "lr=1e-2:1e-3"], "inverted"),
        (["--param", "nope=1:2"], "'nope' is not a field"),
        (["--param", "lr=1e-4:1e-3", "--address", "127.0.0.1:9"], "address='127.0.0.1:9' is not reachable"),
        (["--param", "lr=1e-4:1e-3", "--length", "1000:2000"], "eval_every"),
        (["--param", "lr=1e-4:1e-3", "--searcher", "asha"], "needs a training length"),
        (["--param", "lr=1e-4:1e-3", "--max-trials", "0"], "give --budget SECONDS or --max-trials N"),
        (["--param", "lr=1e-4:1e-3", "--", "--run-name", "x"], "set by each trial itself"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert main(["tune", "collect", "--param", "lr=1e-4:1e-3", "--max-trials", "1"]) == 2
    assert "cannot be tuned" in capsys.readouterr().err
    assert main(["tune", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a study directory" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing may be written for refused input"


def test_space_file_formats(tmp_path):
    from hmarl.tune.space import read_space_file

    (tmp_path / "s.yaml").write_text(
        "params:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
        "length: {field: total_steps, low: 2000, high: 8000}\noptions: {eval_every: 1000}\n"
    )
    (tmp_path / "s.toml").write_text("[params.lr]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n")
    (tmp_path / "s.json").write_text('{"params": {"lr": {"low": 0.0001, "high": 0.01, "log": true}}}')
    for name in ("s.yaml", "s.toml", "s.json"):
        assert read_space_file(str(tmp_path / name))["params"]["lr"]["log"] is True
    (tmp_path / "bad.yaml").write_text("parms: {}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        read_space_file(str(tmp_path / "bad.yaml"))
    with pytest.raises(ValueError, match="no such file"):
        read_space_file(str(tmp_path / "missing.yaml"))


def test_each_searcher_is_built_over_the_same_space():
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    from hmarl.tune.searchers import BoilSearcher, make_searcher

    space = _space(
        {"lr": {"low": 1e-5, "high": 1e-2, "log": True}, "gamma": {"low": 0.8, "high": 1.0}},
        {"field": "total_steps", "low": 2000, "high": 18000},
    )
    search, scheduler, params = make_searcher("boil", space, seed=0)
    assert isinstance(search, BoilSearcher) and scheduler is None and params == {}
    configs = [search.suggest(f"t{k}") for k in range(search.boil.initial_design)]
    assert all(config["total_steps"] == 18000 and 1e-5 <= config["lr"] <= 1e-2 for config in configs)
    search, scheduler, params = make_searcher("tpe", space, seed=0)
    assert isinstance(search, OptunaSearch) and scheduler is None
    steps = [params["total_steps"].sample() for _ in range(50)]
    assert all(2000 <= s <= 18000 and s % 1000 == 0 for s in steps)
    search, scheduler, params = make_searcher("asha", space, seed=0)
    assert isinstance(search, BasicVariantGenerator) and isinstance(scheduler, ASHAScheduler)
    assert params["total_steps"] == 18000 and params["lr"].lower == 1e-5
    with pytest.raises(ValueError, match="searcher='bayes' is not valid"):
        make_searcher("bayes", space, seed=0)
