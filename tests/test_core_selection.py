"""Selection stages: Selective-Backprop's rule, its window, StaleSB's staleness, AdaptSB's
adaptation, resume with the selection's state, and --selection on every off-policy trainer."""

import collections
import importlib
import io

import numpy as np
import pytest
import torch
from scipy.interpolate import interp1d

from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.core import (
    AdaptiveSelectiveBackprop,
    EngineConfig,
    Field,
    ReplayBuffer,
    RowLoss,
    Sample,
    SelectionConfig,
    SelectiveBackprop,
    StaleSelectiveBackprop,
    UpdateEngine,
    make_selection,
)
from hmarl.core.selection import spline
from hmarl.nets import mlp


def _sample(count):
    return Sample({}, torch.arange(count))


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_the_kept_fraction_on_a_stationary_stream_is_one_over_beta_plus_one(beta):
    selection = SelectiveBackprop(beta=beta, window=1024, seed=0)
    generator = torch.Generator().manual_seed(1)
    kept = drawn = 0
    for batch in range(400):
        scores = torch.distributions.Exponential(1.0).sample((128,)) * torch.rand(128, generator=generator) + 1e-3
        chosen = selection.choose(scores, _sample(128))
        if batch >= 8:  # once the window holds R losses
            kept += len(chosen)
            drawn += 128
    assert kept / drawn == pytest.approx(1 / (beta + 1), abs=0.01)


def test_the_percentile_window_holds_the_last_R_losses():
    window, beta, floor = 50, 2.0, 0.05
    selection = SelectiveBackprop(beta=beta, floor=floor, window=window)
    reference = collections.deque(maxlen=window)
    generator = torch.Generator().manual_seed(0)
    for size in (7, 30, 80, 1, 50, 13, 49, 120, 3):
        scores = torch.randn(size, generator=generator)
        reference.extend(scores.tolist())
        history = np.array(reference)
        expected = [max(floor, (np.sum(history < score) / len(history)) ** beta) for score in scores.tolist()]
        np.testing.assert_allclose(selection.probabilities(scores).numpy(), expected, rtol=1e-6)
    # A constructed case: once R larger losses came in, the old small ones no longer count.
    selection = SelectiveBackprop(beta=1.0, window=4)
    selection.probabilities(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    selection.probabilities(torch.tensor([10.0, 11.0, 12.0]))  # the window: 3, 10, 11, 12
    # The window is 10, 11, 12, 11.5 (with 3 still in it, it would be 3/5).
    assert selection.probabilities(torch.tensor([11.5])).item() == pytest.approx(2 / 4)


def _regression_engine(selection, batch_size=4):
    torch.manual_seed(0)
    net = mlp(1, [8], 1)
    engine = UpdateEngine({"net": net}, EngineConfig(batch_size=batch_size, lr=1e-2), total_updates=100)
    engine.selection = selection
    scored = []

    def loss_fn(batch):
        if not torch.is_grad_enabled():
            scored.append(batch["x"].long().tolist())
        return RowLoss((net(batch["x"][:, None]).squeeze(1) - batch["y"]) ** 2), {}

    return engine, loss_fn, scored


def _slot_buffer(slots=16):
    buffer = ReplayBuffer({"x": Field(()), "y": Field(())}, capacity=slots, num_streams=1, seed=3)
    buffer.extend({"x": torch.arange(slots, dtype=torch.float32), "y": torch.randn(slots)})
    return buffer


@pytest.mark.parametrize("staleness", [1, 3])
def test_stale_sb_reuses_a_score_for_exactly_the_staleness(staleness):
    selection = StaleSelectiveBackprop(staleness=staleness, beta=1.0, window=64, seed=0)
    engine, loss_fn, scored = _regression_engine(selection)
    buffer = _slot_buffer()
    drawn_rounds: list[tuple[int, list[int]]] = []
    draw = buffer.draw

    def recording_draw(count):
        sample = draw(count)
        drawn_rounds.append((engine.updates, sample.index.tolist()))
        return sample

    buffer.draw = recording_draw
    x_of_slot = {slot: slot for slot in range(16)}
    last_scored: dict[int, int] = {}
    expected_scored = []
    for update in range(40):
        if update == 20:  # slots 0-3 are written over: their stored scores no longer stand
            buffer.extend({"x": torch.arange(100, 104, dtype=torch.float32), "y": torch.zeros(4)})
            for slot in range(4):
                x_of_slot[slot] = 100 + slot
                last_scored.pop(slot, None)
        start = len(drawn_rounds)
        engine.update(loss_fn, buffer)
        for at_update, slots in drawn_rounds[start:]:
            stale = [slot for slot in slots if not (slot in last_scored and at_update - last_scored[slot] < staleness)]
            if stale:
                expected_scored.append([x_of_slot[slot] for slot in stale])
            for slot in stale:
                last_scored[slot] = at_update
    assert scored == expected_scored
    assert engine.scored_rows == sum(map(len, expected_scored))
    assert engine.backward_rows == 40 * 4
    if staleness > 1:
        assert engine.scored_rows < sum(len(slots) for _, slots in drawn_rounds) / 2


def test_the_adapt_sb_curve_is_the_reference_quadratic_spline():
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    for points in [(0.0, 0.125, 1.0), (0.1, 1.0, 0.1), (0.3, 0.2, 0.9)]:
        expected = interp1d([0, 0.5, 1], points, kind="quadratic")(x.numpy())
        np.testing.assert_allclose(spline(points, x).numpy(), expected, atol=1e-12)


def test_adapt_sb_moves_to_the_curve_after_which_the_loss_falls_most_per_backward_row():
    curves = {"hard": (0.0, 0.125, 1.0), "middle": (0.1, 1.0, 0.1), "all": (1.0, 1.0, 1.0)}
    selection = AdaptiveSelectiveBackprop(curves=curves, period=5, explore=0.0, step=0.5, window=256, seed=0)
    fall = {"hard": 0.01, "middle": 0.05, "all": 0.02}  # the median's fall per update under each curve
    level, used = 100.0, []
    generator = torch.Generator().manual_seed(0)
    for update in range(200):
        selection.begin_update(update)
        batch = selection.candidates(8)
        selection.choose(level + 0.1 * torch.rand(batch, generator=generator), _sample(batch))
        name = selection.names[selection.arm]
        used.append(name)
        level -= fall[name]
    means = dict(zip(selection.names, selection.means, strict=True))
    assert max(means, key=means.get) == "middle"
    # Every curve is tried once, in order, then the best one keeps being chosen.
    assert used[:15] == ["hard"] * 5 + ["middle"] * 5 + ["all"] * 5
    assert used[15:].count("middle") == len(used) - 15
    # The reward is the median's fall per backward row (8 per update); the median of the
    # noise moves by less than 0.1.
    assert means["all"] == pytest.approx(0.02 / 8, abs=0.1 / (5 * 8))
    # When the best curve stops paying, the choice moves on.
    fall["middle"] = -0.05
    for update in range(200, 400):
        selection.begin_update(update)
        selection.choose(level + 0.1 * torch.rand(8, generator=generator), _sample(8))
        level -= fall[selection.names[selection.arm]]
    assert selection.names[selection.arm] == "all"


def _dqn(selection, seed=0):
    config = DQNConfig(
        batch_size=16, buffer_size=512, hidden_sizes=(16,), n_step=2, selection=selection, adapt_period=3, selection_window=64
    )
    torch.manual_seed(seed)
    return DQN(config, obs_dim=3, n_actions=2, num_streams=4, total_steps=1000, total_updates=100, seed=seed)


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


@pytest.mark.parametrize("selection", ["sb", "stale-sb", "adapt-sb"])
def test_resume_is_exact_with_the_selection_state(selection):
    straight = _dqn(selection)
    for step in range(60):
        _step(straight, step)
        if straight.can_update():
            straight.update()
            if step == 25:
                saved = io.BytesIO()
                torch.save(straight.state_dict(), saved)
    resumed = _dqn(selection, seed=1)
    saved.seek(0)
    resumed.load_state_dict(torch.load(saved, weights_only=False))
    for step in range(26, 60):
        _step(resumed, step)
        resumed.update()
    for name, tensor in straight.q_network.state_dict().items():
        assert torch.equal(tensor, resumed.q_network.state_dict()[name]), name
    assert (straight.engine.scored_rows, straight.engine.backward_rows) == (
        resumed.engine.scored_rows,
        resumed.engine.backward_rows,
    )
    assert straight.engine.scored_rows > straight.engine.backward_rows
    first, second = straight.engine.selection.state_dict(), resumed.engine.selection.state_dict()
    assert torch.equal(first["window"]["values"], second["window"]["values"])
    assert torch.equal(first["generator"], second["generator"])
    if selection == "adapt-sb":
        assert first["means"] == second["means"] and first["pulls"] == second["pulls"] and sum(first["pulls"]) > 0
    if selection == "stale-sb":
        assert torch.equal(first["scores"], second["scores"])
    fresh = _dqn("none")
    saved.seek(0)
    with pytest.raises(ValueError, match="same hooks"):
        fresh.load_state_dict(torch.load(saved, weights_only=False))


def test_bad_selection_options_are_refused():
    with pytest.raises(ValueError, match="selection='topk'"):
        make_selection(SelectionConfig(selection="topk"))
    for name, value in [
        ("selection_beta", -1.0),
        ("selection_floor", 1.5),
        ("selection_window", 0),
        ("selection_staleness", 0),
        ("adapt_period", 0),
        ("adapt_explore", 2.0),
        ("adapt_step", 0.0),
    ]:
        with pytest.raises(ValueError, match=name):
            make_selection(SelectionConfig(selection="adapt-sb" if name.startswith("adapt") else "stale-sb", **{name: value}))
    with pytest.raises(ValueError, match="selection='typo'"):
        _dqn("typo")


TRAINER_CONFIGS = [
    ("dqn", "Config"),
    ("ae_dqn", "Config"),
    ("qmix", "Config"),
    ("sac_n", "OnlineConfig"),
    ("sac_n", "OfflineConfig"),
    ("ind_hdqn", "Config"),
    ("hcom", "Config"),
    ("hqmix", "Config"),
]


@pytest.mark.parametrize("module, name", TRAINER_CONFIGS)
def test_every_off_policy_trainer_takes_selection(module, name):
    from hmarl.training import parse_config

    config_cls = getattr(importlib.import_module(f"hmarl.trainers.{module}"), name)
    config = parse_config(config_cls, ["--selection", "stale-sb", "--selection-staleness", "5"])
    assert (config.selection, config.selection_staleness) == ("stale-sb", 5)
    with pytest.raises(SystemExit):
        parse_config(config_cls, ["--selection", "topk"])


def test_every_engine_of_a_learner_gets_the_selection_its_config_names():
    agent = _dqn("adapt-sb")
    assert all(isinstance(engine.selection, AdaptiveSelectiveBackprop) for engine in agent.engines().values())
    assert _dqn("none").engine.selection is None


def _cartpole_args(tmp_path, *extra):
    return [
        "--env",
        "CartPole-v1",
        "--total-steps",
        "12000",
        "--eval-every",
        "2000",
        "--target-value",
        "150",
        "--stop-at-target",
        "--seed",
        "1",
        "--log-dir",
        str(tmp_path / "runs"),
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        "--no-progress",
        *extra,
    ]


def test_dqn_learns_cartpole_with_selective_backprop(tmp_path):
    from hmarl.trainers import dqn as dqn_trainer

    result = dqn_trainer.main(_cartpole_args(tmp_path, "--selection", "sb", "--batch-size", "64"))
    assert result.steps_to_target is not None, result.summary()
    assert result.seconds_to_target is not None and result.seconds_to_target <= result.wall_seconds
    # Every update backpropagates one batch; about four times as many rows were scored (beta = 3).
    assert result.backward_rows == 64 * result.updates
    assert 3 * result.backward_rows < result.scored_rows < 6 * result.backward_rows


def test_a_trainer_refuses_bad_selection_options_before_any_work(tmp_path):
    from hmarl.trainers import dqn as dqn_trainer

    with pytest.raises(ValueError, match=r"selection_beta must be >= 0, got -1.0"):
        dqn_trainer.main(_cartpole_args(tmp_path, "--selection", "sb", "--selection-beta", "-1"))
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").rglob("*.pt"))


@pytest.mark.parametrize("trainer", ["ind_hdqn", "hqmix"])
def test_both_levels_of_a_hierarchical_learner_select_rows(tmp_path, trainer):
    from hmarl.trainers import hierarchical

    from hmarl.training import parse_config, train

    module = importlib.import_module(f"hmarl.trainers.{trainer}")
    config = parse_config(
        module.Config,
        [
            "--selection",
            "stale-sb",
            "--total-steps",
            "800",
            "--num-envs",
            "4",
            "--batch-size",
            "32",
            "--low-updates",
            "1",
            "--learning-starts",
            "200",
            "--high-level-starts",
            "400",
            "--eval-every",
            "0",
            "--no-progress",
            "--log-dir",
            str(tmp_path / "runs"),
            "--checkpoint-dir",
            str(tmp_path / "checkpoints"),
        ],
    )
    agents = []
    result = train(config, lambda *args: agents.append(hierarchical.make_agent(*args)) or agents[-1], trainer)
    engines = agents[0].engines()
    assert set(engines) == {"high", "low"}
    for name, engine in engines.items():
        assert isinstance(engine.selection, StaleSelectiveBackprop), name
        # Every backward row was kept from scored candidates; stale scores spared some scoring.
        assert engine.backward_rows == 32 * engine.updates > 0, name
        assert engine.scored_rows > engine.backward_rows, name
    assert result.backward_rows == sum(engine.backward_rows for engine in engines.values())
