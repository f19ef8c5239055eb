"""Update engine: lr rule, AdaMod, target updates, ensembles, schedules, bad input, resume."""

import copy
import math

import pytest
import torch
from torch import nn

from hmarl.core import (
    AdaMod,
    AutoWarmup,
    EngineConfig,
    EnsembleMLP,
    NonFiniteLossError,
    UpdateEngine,
    make_optimizer,
    make_schedule,
    scale_lr,
)
from hmarl.nets import mlp


@pytest.mark.parametrize(
    ("batch_size", "configured_lr"), [(5_000, 0.0013), (10_000, 0.0018), (20_000, 0.0026), (40_000, 0.0037)]
)
def test_sqrt_rule_reproduces_the_lb_sac_configs(batch_size, configured_lr):
    lr = scale_lr(3e-4, batch_size, 256, "sqrt")
    assert lr == pytest.approx(3e-4 * math.sqrt(batch_size / 256))
    assert lr == pytest.approx(configured_lr, rel=0.05)


def test_other_lr_rules_and_unknown_rule():
    assert scale_lr(1e-3, 1024, 256, "none") == 1e-3
    assert scale_lr(1e-3, 1024, 256, "linear") == pytest.approx(4e-3)
    with pytest.raises(ValueError, match=r"lr_scaling='cubic'.*none.*sqrt.*linear"):
        scale_lr(1e-3, 1024, 256, "cubic")


def adamod_by_hand(params, grads_per_step, lr, betas, beta3, eps, weight_decay):
    """AdaMod's update rule written out element by element for every step."""
    beta1, beta2 = betas
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    s = [torch.zeros_like(p) for p in params]
    params = [p.clone() for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            params[i] = params[i] - weight_decay * lr * params[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            eta = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t) / (v[i].sqrt() + eps)
            s[i] = beta3 * s[i] + (1 - beta3) * eta
            params[i] = params[i] - torch.minimum(eta, s[i]) * m[i]
    return params


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adamod_follows_its_update_rule_on_a_small_problem(weight_decay):
    torch.manual_seed(0)
    target = torch.randn(5, 3, dtype=torch.float64)
    weight = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    initial = [weight.detach().clone(), bias.detach().clone()]
    optimizer = AdaMod([weight, bias], lr=0.05, betas=(0.9, 0.99), beta3=0.9, weight_decay=weight_decay)
    grads_per_step = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = ((weight - target) ** 2).sum() + (bias**2).sum() * 0.5
        loss.backward()
        grads_per_step.append([weight.grad.clone(), bias.grad.clone()])
        optimizer.step()
    expected = adamod_by_hand(initial, grads_per_step, 0.05, (0.9, 0.99), 0.9, 1e-8, weight_decay)
    torch.testing.assert_close(weight.detach(), expected[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bias.detach(), expected[1], rtol=1e-12, atol=1e-12)
    assert loss.item() < 30.0


def tiny_engine(**overrides) -> tuple[UpdateEngine, nn.Module]:
    torch.manual_seed(0)
    net = mlp(4, [8], 2)
    config = EngineConfig(batch_size=16, **overrides)
    return UpdateEngine({"net": net}, config, total_updates=100, targets=["net"]), net


def regression_loss(net: nn.Module):
    def loss_fn(batch):
        x, y = batch
        return ((net(x) - y) ** 2).mean(), {}

    return loss_fn


def regression_batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(16, 4, generator=generator), torch.randn(16, 2, generator=generator)


def test_polyak_target_update_moves_by_tau():
    engine, net = tiny_engine(target_update="polyak", tau=0.1)
    target = engine.targets["net"]
    before_target = [p.clone() for p in target.parameters()]
    engine.update(regression_loss(net), regression_batch())
    for old, new_target, online in zip(before_target, target.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(new_target, 0.9 * old + 0.1 * online)


def test_hard_target_update_copies_every_period():
    engine, net = tiny_engine(target_update="hard", target_update_period=3)
    target = engine.targets["net"]
    initial = [p.clone() for p in target.parameters()]
    loss_fn = regression_loss(net)
    for step in range(1, 4):
        engine.update(loss_fn, regression_batch(step))
        if step < 3:
            assert all(torch.equal(a, b) for a, b in zip(initial, target.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), target.parameters(), strict=True))
    assert not any(p.requires_grad for p in target.parameters())


def test_ensemble_equals_separate_modules():
    torch.manual_seed(0)
    members = [mlp(6, [16, 16], 3) for _ in range(5)]
    ensemble = EnsembleMLP.from_members(members)
    shared_input = torch.randn(7, 6)
    member_inputs = torch.randn(5, 7, 6)
    torch.testing.assert_close(ensemble(shared_input), torch.stack([m(shared_input) for m in members]))
    torch.testing.assert_close(
        ensemble(member_inputs), torch.stack([m(x) for m, x in zip(members, member_inputs, strict=True)])
    )
    # Gradients flow to each member's own slice as they would to the separate module.
    ensemble(member_inputs).sum().backward()
    sum(m(x).sum() for m, x in zip(members, member_inputs, strict=True)).backward()
    first = ensemble.layers[0]
    torch.testing.assert_close(first.weight.grad, torch.stack([m[0].weight.grad.T for m in members]))


def test_autowu_warms_up_exponentially_then_decays():
    total = 1200
    schedule = AutoWarmup(lr=1.0, total_steps=total, check_every=40)
    generator = torch.Generator().manual_seed(0)
    lrs = []
    for _ in range(total):
        lrs.append(schedule.lr)
        # The loss is lowest at lr = 1e-2 and rises for larger rates, as in training.
        loss = (math.log10(schedule.lr) + 2.0) ** 2 + 0.05 * float(torch.randn((), generator=generator))
        schedule.step(loss)
    switch = schedule.decay_start
    assert switch is not None and switch < schedule.max_warmup_steps
    warmup = torch.tensor(lrs[: switch - 1])
    ratios = warmup[1:] / warmup[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, schedule.growth), rtol=1e-6, atol=0)
    peak = lrs[switch]
    assert 1e-3 < peak < 1e-1, "the restart lr is where the smoothed loss was lowest"
    decay = torch.tensor(lrs[switch:])
    assert torch.all(decay[1:] <= decay[:-1])
    assert lrs[-1] < 1e-3 * peak


def test_cosine_and_constant_schedules():
    cosine = make_schedule("cosine", 1.0, 10)
    values = []
    for _ in range(10):
        values.append(cosine.lr)
        cosine.step(0.0)
    assert values[0] == 1.0 and cosine.lr == pytest.approx(0.0, abs=1e-12)
    assert values == sorted(values, reverse=True)
    constant = make_schedule("constant", 0.3, 10)
    constant.step(1.0)
    assert constant.lr == 0.3


def test_unknown_optimizer_and_schedule_are_refused():
    net = mlp(2, [4], 1)
    with pytest.raises(ValueError, match=r"optimizer='sgdx'.*adam.*adamw.*adamod"):
        UpdateEngine({"net": net}, EngineConfig(optimizer="sgdx"), total_updates=10)
    with pytest.raises(ValueError, match=r"schedule='linear'.*constant.*cosine.*autowu"):
        UpdateEngine({"net": net}, EngineConfig(schedule="linear"), total_updates=10)
    with pytest.raises(ValueError, match="optimizer='lamb'"):
        make_optimizer("lamb", net.parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="target_update='soft'"):
        UpdateEngine({"net": net}, EngineConfig(target_update="soft"), total_updates=10)


def test_non_finite_loss_stops_without_touching_parameters():
    engine, net = tiny_engine()
    before = [p.clone() for p in net.parameters()]

    def nan_loss(batch):
        return net(batch[0]).sum() * float("nan"), {}

    with pytest.raises(NonFiniteLossError, match=r"non-finite loss nan .* at update 1"):
        engine.update(nan_loss, regression_batch())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "adamod"])
@pytest.mark.parametrize("schedule", ["constant", "autowu"])
def test_engine_resumes_bit_identically(optimizer, schedule):
    overrides = {"optimizer": optimizer, "schedule": schedule, "autowu_check_every": 5, "target_update": "polyak"}
    engine, net = tiny_engine(**overrides)
    for step in range(10):
        engine.update(regression_loss(net), regression_batch(step))
    saved = copy.deepcopy(engine.state_dict())
    for step in range(10, 20):
        engine.update(regression_loss(net), regression_batch(step))

    resumed, resumed_net = tiny_engine(**overrides)
    resumed.load_state_dict(saved)
    for step in range(10, 20):
        resumed.update(regression_loss(resumed_net), regression_batch(step))
    for a, b in zip(net.parameters(), resumed_net.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(engine.targets.parameters(), resumed.targets.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.updates == engine.updates == 20


def test_update_reports_metrics():
    engine, net = tiny_engine(lr=1e-3, lr_scaling="sqrt", base_batch_size=4)
    metrics = engine.update(regression_loss(net), regression_batch())
    assert set(metrics) >= {"loss", "grad_norm", "lr", "samples_per_second"}
    assert metrics["lr"] == pytest.approx(2e-3)
    assert metrics["loss"] > 0 and metrics["grad_norm"] > 0 and metrics["samples_per_second"] > 0
