"""The update core's seams: samplers and their scores, per-row losses, the selection
stage and hooks."""

import io

import numpy as np
import pytest
import torch
from scipy import stats

from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.core import (
    EngineConfig,
    Field,
    PrioritizedSampler,
    ReplayBuffer,
    RowLoss,
    SamplerConfig,
    SumTree,
    UpdateEngine,
    ZeroGradientFraction,
)
from hmarl.nets import mlp


def _buffer(capacity=64, streams=4, n_step=1, sampler=None, seed=0):
    fields = {"x": Field(()), "reward": Field(()), "terminated": Field((), torch.bool), "truncated": Field((), torch.bool)}
    return ReplayBuffer(fields, capacity, streams, n_step=n_step, gamma=0.5, seed=seed, sampler=sampler, total_draws=100)


def _fill(buffer, rows):
    for step in range(rows):
        streams = buffer.num_streams
        buffer.add(
            {
                "x": torch.arange(streams) + 100.0 * step,
                "reward": torch.ones(streams),
                "terminated": torch.zeros(streams, dtype=torch.bool),
                "truncated": torch.zeros(streams, dtype=torch.bool),
            }
        )


def test_the_uniform_sampler_draws_what_the_replay_always_drew():
    buffer = _buffer(capacity=40, streams=4)
    _fill(buffer, 13)  # wrapped: 10 rows, the oldest is row 3
    sample = buffer.draw(32)
    assert sample.weights is None
    generator = torch.Generator().manual_seed(0)
    drawn = torch.randint(len(buffer), (32,), generator=generator)
    row = (3 + drawn // 4) % 10
    torch.testing.assert_close(sample.index, row * 4 + drawn % 4)
    torch.testing.assert_close(sample.batch["x"], buffer.storage["x"][sample.index])


def test_sum_tree_finds_the_leaf_of_each_prefix():
    tree = SumTree(5, torch.device("cpu"))
    tree.set(torch.arange(5), torch.tensor([1.0, 0.0, 2.0, 3.0, 0.5]))
    assert tree.total.item() == pytest.approx(6.5)
    prefix = torch.tensor([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 6.49], dtype=torch.float64)
    assert tree.find(prefix).tolist() == [0, 0, 2, 2, 3, 3, 4, 4]
    tree.set(torch.tensor([2, 2]), torch.tensor([4.0, 4.0]))  # a slot written twice at once
    assert tree.total.item() == pytest.approx(8.5)


def test_prioritized_indices_weights_and_scores_round_trip():
    config = SamplerConfig(sampler="prioritized", priority_alpha=0.5, priority_beta=0.4, priority_eps=0.0 + 1e-6)
    buffer = _buffer(capacity=16, streams=4, sampler=config)
    _fill(buffer, 4)
    sample = buffer.draw(8)
    # New rows enter with the largest priority seen (1 at first): every weight is 1.
    torch.testing.assert_close(sample.weights, torch.ones(8))
    scores = torch.arange(8, dtype=torch.float32)
    buffer.feedback(sample.index, scores)
    leaves = buffer.sampler.tree.leaves(sample.index)
    expected = (scores.double() + 1e-6).sqrt()
    # A slot drawn twice keeps one of its scores.
    for slot in sample.index.unique():
        chosen = leaves[sample.index == slot]
        assert any(torch.isclose(chosen[0], expected[sample.index == slot]))
    # Importance weights: (N P(i))^-beta over the batch's largest.
    after = buffer.draw(8)
    probability = buffer.sampler.tree.leaves(after.index) / buffer.sampler.tree.total
    beta = buffer.sampler.beta_start + (1 / 100) * (1 - buffer.sampler.beta_start)
    weights = (len(buffer) * probability) ** -beta
    torch.testing.assert_close(after.weights, (weights / weights.max()).float())
    # The state goes through a checkpoint: a restored sampler draws the same next batch.
    saved = io.BytesIO()
    torch.save(buffer.state_dict(), saved)
    restored = _buffer(capacity=16, streams=4, sampler=config)
    saved.seek(0)
    restored.load_state_dict(torch.load(saved, weights_only=False))
    first, second = buffer.draw(16), restored.draw(16)
    torch.testing.assert_close(first.index, second.index)
    torch.testing.assert_close(first.weights, second.weights)


def test_prioritized_draws_follow_the_priorities():
    """Chi-square goodness of fit of 40,000 draws over 8 slots with known priorities."""
    buffer = _buffer(
        capacity=8, streams=1, sampler=SamplerConfig(sampler="prioritized", priority_alpha=1.0, priority_eps=1e-9)
    )
    _fill(buffer, 8)
    priorities = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.5, 8.0, 0.25, 6.0])
    buffer.feedback(torch.arange(8), priorities)
    counts = torch.bincount(torch.cat([buffer.draw(8).index for _ in range(5000)]), minlength=8).numpy()
    expected = (priorities / priorities.sum()).numpy() * counts.sum()
    statistic, p_value = stats.chisquare(counts, expected)
    assert p_value > 1e-3, (counts, expected, statistic)
    # A slot whose priority is 0 is never drawn.
    buffer.sampler.retired(torch.tensor([5]))
    assert not any(5 in buffer.draw(8).index.tolist() for _ in range(500))


def test_prioritized_n_step_windows_are_drawn_only_once_complete():
    buffer = _buffer(capacity=24, streams=2, n_step=3, sampler=SamplerConfig(sampler="prioritized"))
    _fill(buffer, 5)
    # Rows 0-2 start complete 3-step windows, rows 3-4 do not yet.
    leaves = buffer.sampler.tree.leaves(torch.arange(24)).reshape(12, 2)
    assert (leaves[:3] > 0).all() and (leaves[3:] == 0).all()
    _fill(buffer, 9)  # 14 rows written into 12: rows 0 and 1 were written over
    leaves = buffer.sampler.tree.leaves(torch.arange(24)).reshape(12, 2)
    sampleable = (leaves > 0).all(1).nonzero().flatten().tolist()
    assert sampleable == list(range(2, 12))[: len(sampleable)] and len(sampleable) == len(buffer) // 2
    drawn = torch.cat([buffer.draw(20).index for _ in range(50)])
    assert set(drawn.div(2, rounding_mode="floor").tolist()) <= set(sampleable)


class Recorder:
    """A hook that records what it sees at every point, and counts (its state)."""

    def __init__(self, log):
        self.log = log
        self.calls = 0

    def before_loss(self, ctx):
        grads = [p.grad for p in ctx.engine.parameters]
        self.log.append(("before_loss", ctx.batch["x"].clone(), all(g is None for g in grads)))

    def after_backward(self, ctx):
        grads = [p.grad.clone() for p in ctx.engine.parameters]
        self.log.append(("after_backward", ctx.loss.detach().clone(), ctx.rows.values.detach().clone(), grads))

    def after_step(self, ctx):
        params = [p.detach().clone() for p in ctx.engine.parameters]
        targets = [p.detach().clone() for p in ctx.engine.targets["net"].parameters()]
        self.log.append(("after_step", params, targets))
        self.calls += 1

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


def _regression(seed=0, **overrides):
    torch.manual_seed(seed)
    net = mlp(1, [8], 1)
    engine = UpdateEngine(
        {"net": net},
        EngineConfig(batch_size=6, target_update="polyak", tau=0.5, **overrides),
        total_updates=100,
        targets=["net"],
    )

    def loss_fn(batch):
        values = (net(batch["x"][:, None]).squeeze(1) - batch["reward"]) ** 2
        return RowLoss(values), {}

    return engine, net, loss_fn


def test_hook_points_fire_in_order_with_the_tensors_they_promise():
    engine, net, loss_fn = _regression()
    log: list = []
    engine.add_hook(Recorder(log))
    order = []
    engine.add_hook(type("Second", (), {"after_step": lambda self, ctx: order.append(len(log))})())
    buffer = _buffer(capacity=32, streams=4)
    _fill(buffer, 8)
    before = [p.detach().clone() for p in net.parameters()]
    engine.update(loss_fn, buffer)
    assert [entry[0] for entry in log] == ["before_loss", "after_backward", "after_step"]
    assert order == [3], "hooks run in the order they were added"
    _, x, no_grads = log[0]
    assert no_grads and x.shape == (6,)
    _, loss, rows, grads = log[1]
    assert rows.shape == (6,) and loss.item() == pytest.approx(rows.mean().item())
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    _, params, targets = log[2]
    assert all(not torch.equal(old, new) for old, new in zip(before, params, strict=True))
    for old, target, new in zip(before, targets, params, strict=True):
        torch.testing.assert_close(target, 0.5 * old + 0.5 * new)
    with pytest.raises(TypeError, match="before_loss"):
        engine.add_hook(object())


def test_importance_weights_scale_the_rows_and_scores_go_back():
    engine, _net, loss_fn = _regression()
    config = SamplerConfig(sampler="prioritized")
    buffer = _buffer(capacity=32, streams=4, sampler=config)
    _fill(buffer, 8)
    sample = buffer.draw(6)
    sample.weights = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    with torch.no_grad():
        rows, _ = loss_fn(sample.batch)
    metrics = engine.update(loss_fn, sample)
    assert metrics["loss"] == pytest.approx(rows.values[0].item() / 6, rel=1e-5)
    priorities = buffer.sampler.tree.leaves(sample.index)
    torch.testing.assert_close(priorities, (rows.values.double() + 1e-6) ** 0.6, rtol=1e-4, atol=1e-6)
    assert engine.backward_rows == 6


def test_the_selection_stage_backpropagates_only_the_chosen_rows():
    engine, _net, loss_fn = _regression()

    class KeepLargest:
        def candidates(self, batch_size):
            return 2 * batch_size

        def choose(self, scores, sample):
            return scores.argsort(descending=True)[: len(scores) // 4]

    engine.selection = KeepLargest()
    seen = []
    engine.add_hook(type("Seen", (), {"before_loss": lambda self, ctx: seen.append(ctx.batch["x"].clone())})())
    buffer = _buffer(capacity=64, streams=4)
    _fill(buffer, 16)
    buffer.storage["reward"].copy_(torch.linspace(0, 5, 64))
    engine.update(loss_fn, buffer)
    assert seen[0].shape == (6,), "two rounds of 12 candidates keep 3 each"
    assert (engine.scored_rows, engine.backward_rows) == (24, 6)


class Counter:
    """A stateful hook: counts optimiser steps and sums the losses it saw."""

    def __init__(self):
        self.calls = 0
        self.loss_sum = 0.0

    def after_step(self, ctx):
        self.calls += 1
        self.loss_sum += float(ctx.loss)

    def state_dict(self):
        return {"calls": self.calls, "loss_sum": self.loss_sum}

    def load_state_dict(self, state):
        self.calls, self.loss_sum = state["calls"], state["loss_sum"]


def _prioritized_dqn(seed=0):
    config = DQNConfig(batch_size=16, buffer_size=512, hidden_sizes=(16,), sampler="prioritized", n_step=2)
    torch.manual_seed(seed)
    agent = DQN(config, obs_dim=3, n_actions=2, num_streams=4, total_steps=1000, total_updates=100, seed=seed)
    hook = agent.engine.add_hook(Counter())
    return agent, hook


def _step(agent, step):
    generator = torch.Generator().manual_seed(step)
    obs = torch.rand(4, 1, 3, generator=generator)
    agent.store(
        {
            "observation": obs,
            "action": torch.randint(2, (4, 1), generator=generator),
            "reward": torch.rand(4, 1, generator=generator),
            "next_observation": obs + 0.1,
            "next_action_mask": torch.ones(4, 1, 2, dtype=torch.bool),
            "terminated": torch.rand(4, generator=generator) < 0.1,
            "truncated": torch.zeros(4, dtype=torch.bool),
        }
    )


def test_resume_is_exact_with_the_prioritized_sampler_and_a_stateful_hook():
    straight, straight_hook = _prioritized_dqn()
    for step in range(40):
        _step(straight, step)
        if straight.can_update():
            straight.update()
            if step == 20:
                saved = io.BytesIO()
                torch.save(straight.state_dict(), saved)
                calls_then = straight_hook.calls
    resumed, resumed_hook = _prioritized_dqn(seed=1)
    saved.seek(0)
    resumed.load_state_dict(torch.load(saved, weights_only=False))
    assert resumed_hook.calls == calls_then > 0
    for step in range(21, 40):
        _step(resumed, step)
        resumed.update()
    assert (resumed_hook.calls, resumed_hook.loss_sum) == (straight_hook.calls, straight_hook.loss_sum)
    for name, tensor in straight.q_network.state_dict().items():
        assert torch.equal(tensor, resumed.q_network.state_dict()[name]), name
    assert torch.equal(straight.replay.sampler.tree.nodes, resumed.replay.sampler.tree.nodes)
    assert np.isclose(straight.replay.sampler.beta, resumed.replay.sampler.beta)
    without_hook, _ = _prioritized_dqn()
    without_hook.engine.hooks.clear()
    saved.seek(0)
    with pytest.raises(ValueError, match="same hooks"):
        without_hook.load_state_dict(torch.load(saved, weights_only=False))


def test_bad_sampler_options_are_refused():
    with pytest.raises(ValueError, match="sampler='rank'"):
        _buffer(sampler=SamplerConfig(sampler="rank"))
    with pytest.raises(ValueError, match="priority_alpha"):
        PrioritizedSampler(8, torch.device("cpu"), alpha=-1.0)
    with pytest.raises(ValueError, match="priority_beta"):
        PrioritizedSampler(8, torch.device("cpu"), beta=1.5)


def test_every_off_policy_config_takes_a_sampler():
    from hmarl.agents import AEDQNConfig, SACNConfig
    from hmarl.hier import HierConfig

    for config_cls in (DQNConfig, AEDQNConfig, SACNConfig, HierConfig):
        assert issubclass(config_cls, SamplerConfig), config_cls


def test_the_shipped_zero_gradient_hook_counts_dead_units():
    engine, net, loss_fn = _regression()
    hook = engine.add_hook(ZeroGradientFraction())
    buffer = _buffer(capacity=32, streams=4)
    _fill(buffer, 8)
    assert np.isnan(hook.fraction)
    engine.update(loss_fn, buffer)
    engine.update(loss_fn, buffer)
    fraction = hook.fraction
    assert 0.0 <= fraction <= 1.0 and hook.updates == 0
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.zero_()
    engine.update(loss_fn, buffer)  # every hidden unit dead: only the output bias gets a gradient
    assert hook.fraction == pytest.approx(1 - 1 / sum(p.numel() for p in net.parameters()))
