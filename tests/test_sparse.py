"""RLx2 sparse training on the core: Erdős-Rényi allocation, masks through optimiser and
target updates, RigL, the delayed n-step switch, the dynamic buffer, exact resume, bad
input, sparse export, and learning with a sparse network."""

import math

import pytest
import torch
from hmarl.envs import trash_collection_v0
from hmarl.trainers import dqn as dqn_trainer
from torch import nn

from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.core import (
    EngineConfig,
    Field,
    ReplayBuffer,
    RowLoss,
    SparseConfig,
    SparseTraining,
    UpdateEngine,
    attach_sparse,
    check_sparse,
    csr_inference,
    erdos_renyi_densities,
    export_sparse,
    load_sparse,
)
from hmarl.core.sparse import ReplayControl
from hmarl.hier import HierarchicalAgent, HierConfig, HierSpec
from hmarl.training.loop import make_transition, to_tensors


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


def _regression(net: nn.Module):
    x, y = torch.randn(64, 4), torch.randn(64, 2)

    def loss(batch):
        return ((net(x) - y) ** 2).mean(), {}

    return loss


# --- allocation ---------------------------------------------------------------------
def test_erdos_renyi_densities_of_a_hand_computed_network():
    # Layers 4->8, 8->8, 8->2: 32, 64 and 16 weights; raw (I+O)/(IO) = 0.375, 0.25, 0.625.
    shapes = [(8, 4), (8, 8), (2, 8)]
    # At 50%, 56 weights stay: eps = 56 / (0.375*32 + 0.25*64 + 0.625*16) = 56/38.
    assert erdos_renyi_densities(shapes, 0.5) == pytest.approx([0.375 * 56 / 38, 0.25 * 56 / 38, 0.625 * 56 / 38])
    # At 20%, the last layer would exceed 1 (0.625 * 89.6/38) and is dense; the rest share
    # 89.6 - 16 = 73.6 weights with eps = 73.6 / 28.
    assert erdos_renyi_densities(shapes, 0.2) == pytest.approx([0.375 * 73.6 / 28, 0.25 * 73.6 / 28, 1.0])
    assert erdos_renyi_densities(shapes, 0.0) == [1.0, 1.0, 1.0]


def test_masks_keep_the_allocated_count_per_layer_and_ensemble_member():
    from hmarl.core import EnsembleMLP

    ensemble = EnsembleMLP(5, (16, 16), 1, 3)
    engine = UpdateEngine({"critic": ensemble}, EngineConfig(), 10)
    hook = SparseTraining(engine, 0.8)
    shapes = [tuple(layer.shape) for layer in hook.layers]
    assert shapes == [(5, 16), (16, 16), (16, 1)]
    for layer, density in zip(hook.layers, erdos_renyi_densities(shapes, 0.8), strict=True):
        per_member = layer.mask.reshape(3, -1).sum(1)
        assert per_member.tolist() == [round(density * math.prod(layer.shape))] * 3
    assert hook.density() == pytest.approx(0.2, abs=0.02)


# --- masks --------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer,target_update", [("adam", "polyak"), ("adamw", "hard"), ("adamod", "polyak")])
def test_masked_weights_stay_exactly_zero_through_optimiser_and_target_updates(optimizer, target_update):
    net = _net()
    config = EngineConfig(
        optimizer=optimizer, weight_decay=0.1, target_update=target_update, target_update_period=3, tau=0.5, lr=1e-2
    )
    engine = UpdateEngine({"q": net}, config, 100, targets=["q"])
    # Targets differ from the network before the hook: re-masking must reach them too.
    with torch.no_grad():
        for param in engine.targets["q"].parameters():
            param.add_(1.0)
    hook = engine.add_hook(SparseTraining(engine, 0.7, topology="static"))
    loss = _regression(net)
    for _ in range(12):
        engine.update(loss, None)
        for layer in hook.layers:
            assert (layer.weight[~layer.mask] == 0).all()
            assert (layer.targets[0][~layer.mask] == 0).all()
            assert (layer.weight[layer.mask] != 0).any()
    weights = [layer.weight for layer in hook.layers]
    assert all(w.grad is None or (w.grad[~layer.mask] == 0).all() for w, layer in zip(weights, hook.layers, strict=True))


def test_without_the_hook_the_same_updates_leave_no_zeros():
    net = _net()
    engine = UpdateEngine({"q": net}, EngineConfig(lr=1e-2), 100, targets=["q"])
    loss = _regression(net)
    for _ in range(3):
        engine.update(loss, None)
    assert all((module.weight != 0).all() for module in net if isinstance(module, nn.Linear))


# --- RigL ---------------------------------------------------------------------------
def test_cosine_drop_fraction_schedule():
    engine = UpdateEngine({"q": _net()}, EngineConfig(), 1000)
    hook = SparseTraining(engine, 0.5, period=10, drop_fraction=0.3)
    assert hook.drop_fraction_at(0) == pytest.approx(0.3)
    assert hook.drop_fraction_at(250) == pytest.approx(0.15 * (1 + math.cos(math.pi / 4)))
    assert hook.drop_fraction_at(500) == pytest.approx(0.15)
    assert hook.drop_fraction_at(1000) == 0.0
    assert [hook.due(u) for u in (9, 10, 20, 990, 1000, 1010)] == [False, True, True, True, False, False]
    assert SparseTraining(engine, 0.5).period == 100, "short runs: at least 100 updates"
    long_engine = UpdateEngine({"q": _net()}, EngineConfig(), 3_000_000)
    assert SparseTraining(long_engine, 0.5).period == 10_000, "the reference's period in its run length"
    assert not SparseTraining(engine, 0.5, topology="static", period=10).due(10)


def test_rigl_drops_smallest_grows_largest_gradients_with_counts_per_layer():
    net = _net()
    engine = UpdateEngine({"q": net}, EngineConfig(lr=1e-2), 40)
    hook = engine.add_hook(SparseTraining(engine, 0.5, period=4, drop_fraction=0.5))
    loss = _regression(net)
    for _ in range(3):
        engine.update(loss, None)
    before = [layer.mask.clone() for layer in hook.layers]
    # The 4th update is a topology update: capture its weights after the step, and its
    # dense gradient, by repeating what the hook sees.
    seen = {}

    class Spy:
        def after_backward(self, ctx):
            seen["grads"] = [layer.weight.grad.clone() for layer in hook.layers]

    spy = Spy()
    engine.hooks.insert(0, spy)
    engine._hook_calls["after_backward"].insert(0, spy.after_backward)

    class WeightsBefore:
        def after_step(self, ctx):
            seen["weights"] = [layer.weight.detach().clone() for layer in hook.layers]

    engine._hook_calls["after_step"].insert(0, WeightsBefore().after_step)
    engine.update(loss, None)
    fraction = hook.drop_fraction_at(4)
    expected = [int(fraction * int(old.sum())) for old in before]
    assert hook.dropped == expected and all(count > 0 for count in expected[:2])
    assert hook.topology_updates == 1 and hook.dense_gradient_updates == 1
    for layer, old, weights, grad, count in zip(hook.layers, before, seen["weights"], seen["grads"], expected, strict=True):
        new = layer.mask
        assert int(new.sum()) == int(old.sum()), "the active count per layer is constant"
        # Grown weights (a dropped one may grow back) are exactly zero now; kept ones are not.
        kept = old & new & (layer.weight != 0)
        grown = new & ~kept
        assert int(grown.sum()) == count and int((old & ~kept).sum()) == count
        if count:
            assert weights.abs()[old & ~kept].max() <= weights.abs()[kept].min(), "the smallest |w| are dropped"
            assert grad.abs()[grown].min() >= grad.abs()[~new].max(), "the largest dense |gradient| are grown"
            assert (layer.weight[grown] == 0).all(), "grown weights start at zero"
            state = engine.optimizer.state[layer.weight]
            assert (state["exp_avg"][grown] == 0).all() and (state["exp_avg_sq"][~kept] == 0).all()
            assert (state["exp_avg_sq"][kept] != 0).any(), "kept weights keep their moments"


# --- replay: delayed n-step and dynamic buffer -----------------------------------------
def _replay(capacity: int = 64, streams: int = 2) -> ReplayBuffer:
    fields = {
        "x": Field(()),
        "action": Field((), torch.long),
        "reward": Field(()),
        "terminated": Field((), torch.bool),
        "truncated": Field((), torch.bool),
    }
    replay = ReplayBuffer(fields, capacity, streams, gamma=0.5)
    for step in range(capacity // streams):
        replay.add(
            {
                "x": torch.full((streams,), float(step)),
                "action": torch.zeros(streams, dtype=torch.long),
                "reward": torch.ones(streams),
                "terminated": torch.zeros(streams, dtype=torch.bool),
                "truncated": torch.zeros(streams, dtype=torch.bool),
            }
        )
    return replay


def _scalar_engine() -> tuple[UpdateEngine, nn.Module]:
    net = nn.Linear(1, 1)
    return UpdateEngine({"q": net}, EngineConfig(batch_size=8), 100), net


def test_nstep_switch_happens_at_the_delay():
    engine, net = _scalar_engine()
    replay = _replay()
    control = engine.add_hook(ReplayControl(engine, "q", None, nstep=3, delay=5, dynamic_buffer=False))
    discounts = []

    def loss(batch):
        discounts.append(batch["discount"].clone())
        return RowLoss((net(batch["x"][:, None]).squeeze(1) - batch["reward"]) ** 2), {}

    for _ in range(8):
        engine.update(loss, replay)
    assert [bool((d == 0.5).all()) for d in discounts] == [True] * 5 + [False] * 3
    assert all((d == 0.125).all() for d in discounts[5:]), "3-step discounts after the 5th update"
    assert replay.n_step == 3 and control.switched
    assert ReplayControl(engine, "q", None, delay=-1).delay == round(0.1 * 100)


def test_delayed_nstep_starts_one_step_whatever_the_learners_n():
    engine, net = _scalar_engine()
    replay = _replay()
    replay.set_n_step(3)
    engine.add_hook(ReplayControl(engine, "q", None, nstep=3, delay=2, dynamic_buffer=False))
    discounts = []

    def loss(batch):
        discounts.append(float(batch["discount"][0]))
        return RowLoss((net(batch["x"][:, None]).squeeze(1) - batch["reward"]) ** 2), {}

    for _ in range(4):
        engine.update(loss, replay)
    assert discounts == [0.5, 0.5, 0.125, 0.125]


def test_set_n_step_sums_rewards_and_keeps_windows_complete():
    replay = _replay(capacity=16, streams=1)
    replay.set_n_step(3)
    assert len(replay) == 14
    batch = replay.gather(torch.tensor([0, 13]))
    assert batch["reward"].tolist() == [1.75, 1.75] and batch["discount"].tolist() == [0.125, 0.125]
    with pytest.raises(ValueError, match="n_step"):
        replay.set_n_step(0)


def test_dynamic_buffer_shrinks_only_above_the_threshold_and_never_below_its_minimum():
    engine, _ = _scalar_engine()
    replay = _replay(capacity=200, streams=2)
    distance = {"value": 0.1}
    control = ReplayControl(
        engine, "q", lambda name, rows: torch.tensor(distance["value"]), nstep=1, threshold=0.3, minimum=150, check_rows=16
    )
    oldest = replay.oldest(4)["x"].tolist()
    assert oldest == [0.0, 0.0, 1.0, 1.0]
    assert control.check(replay) == 0 and replay.filled_rows * 2 == 200
    distance["value"] = 0.5
    assert control.check(replay) == 20, "10% of the stored transitions, oldest first"
    assert replay.filled_rows * 2 == 180 and replay.oldest(2)["x"].tolist() == [10.0, 10.0]
    sizes = []
    for _ in range(5):
        control.check(replay)
        sizes.append(replay.filled_rows * 2)
    assert sizes == [162, 150, 150, 150, 150], "never below the minimum"
    draws = torch.cat([replay.draw(50).batch["x"] for _ in range(20)])
    assert draws.min() >= 25, "dropped transitions are never drawn"
    # New transitions fill the freed room.
    replay.add(
        {
            "x": torch.full((2,), 100.0),
            "action": torch.zeros(2, dtype=torch.long),
            "reward": torch.ones(2),
            "terminated": torch.zeros(2, dtype=torch.bool),
            "truncated": torch.zeros(2, dtype=torch.bool),
        }
    )
    assert replay.filled_rows * 2 == 152


# --- learners -----------------------------------------------------------------------
def _dqn(config: DQNConfig, seed: int = 0) -> DQN:
    return DQN(config, obs_dim=4, n_actions=3, num_streams=2, total_steps=2000, total_updates=60, seed=seed)


def _fill(agent: DQN, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        agent.replay.add(
            {
                "observation": torch.randn(2, 4, generator=generator),
                "action": torch.randint(3, (2,), generator=generator),
                "reward": torch.randn(2, generator=generator),
                "next_observation": torch.randn(2, 4, generator=generator),
                "terminated": torch.rand(2, generator=generator) < 0.1,
                "truncated": torch.zeros(2, dtype=torch.bool),
                "next_action_mask": torch.ones(2, 3, dtype=torch.bool),
            }
        )


SPARSE_DQN = DQNConfig(
    batch_size=16,
    buffer_size=400,
    hidden_sizes=(32, 32),
    sparsity=0.8,
    topology_period=5,
    nstep_delay=12,
    buffer_check_period=4,
    buffer_min=100,
    buffer_threshold=0.3,
)


def test_resume_is_exact_with_masks_topology_schedule_and_buffer_capacity():
    first = _dqn(SPARSE_DQN)
    sparse_first = attach_sparse(first, SPARSE_DQN, 2000)
    _fill(first, 200, 0)
    for _ in range(18):
        first.update()
    state = {key: value for key, value in first.state_dict().items()}
    state = __import__("copy").deepcopy(state)
    second = _dqn(SPARSE_DQN, seed=5)
    sparse_second = attach_sparse(second, SPARSE_DQN, 2000)
    second.load_state_dict(state)
    assert second.replay.n_step == 3 and second.replay.filled_rows == first.replay.filled_rows
    assert first.replay.filled_rows * 2 < 400, "the buffer shrank before the checkpoint"
    for _ in range(20):
        a, b = first.update(), second.update()
        assert a["loss"] == b["loss"]
    for (name, p), q in zip(first.q_network.named_parameters(), second.q_network.parameters(), strict=True):
        assert torch.equal(p, q), name
    hook_a, hook_b = sparse_first.hooks["q"], sparse_second.hooks["q"]
    assert hook_a.topology_updates == hook_b.topology_updates >= 7
    assert all(torch.equal(x.mask, y.mask) for x, y in zip(hook_a.layers, hook_b.layers, strict=True))
    assert first.replay.filled_rows == second.replay.filled_rows
    assert sparse_first.summary_fields() == sparse_second.summary_fields()


def test_dense_default_attaches_nothing():
    agent = _dqn(DQNConfig(batch_size=16, buffer_size=400))
    assert attach_sparse(agent, agent.config, 2000) is None
    assert agent.engine.hooks == []


def test_every_learner_gets_it_the_hierarchical_levels_included():
    env = trash_collection_v0.vector_env(num_envs=2, layout="room", max_cycles=10)
    spec = HierSpec.of(env)
    config = HierConfig(
        high_level="qmix",
        batch_size=16,
        high_buffer_size=256,
        low_buffer_size=256,
        high_level_starts=0,
        sparsity=0.9,
        buffer_check_period=1,
        buffer_min=16,
    )
    agent = HierarchicalAgent(config, spec, option_len=4, total_updates=10)
    run = attach_sparse(agent, config, 100)
    assert set(run.hooks) == {"low", "high"}
    agent.attach_env(env, evaluation=False)
    obs, _ = env.reset(seed=0)
    for step in range(12):
        actions = agent.act(to_tensors(obs, "cpu"), step * 2).numpy()
        next_obs, rewards, terminated, truncated, infos = env.step(actions)
        agent.store(make_transition(obs, actions, rewards, next_obs, terminated, truncated, infos, "cpu"))
        obs = next_obs
    agent.update()
    for hook in run.hooks.values():
        assert all((layer.weight[~layer.mask] == 0).all() for layer in hook.layers)
    metrics = run.metrics()
    assert 0 <= metrics["low_policy_distance"] <= 1 and metrics["low_nstep"] == 1, "option rows keep 1-step"
    assert metrics["inference_flops"] == pytest.approx(0.1, abs=0.02)


# --- bad input ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides,option",
    [
        ({"sparsity": 1.0}, "sparsity"),
        ({"sparsity": -0.1}, "sparsity"),
        ({"sparsity": 0.9, "actor_sparsity": 1.5}, "actor_sparsity"),
        ({"sparsity": 0.9, "topology_period": -1}, "topology_period"),
        ({"sparsity": 0.9, "nstep_delay": 500}, "nstep_delay"),
        ({"sparsity": 0.9, "delayed_nstep": 0}, "delayed_nstep"),
        ({"sparsity": 0.9, "topology": "set"}, "topology"),
        ({"sparsity": 0.9, "drop_fraction": 2.0}, "drop_fraction"),
    ],
)
def test_bad_sparse_options_are_named(overrides, option):
    with pytest.raises(ValueError, match=rf"^{option}="):
        check_sparse(SparseConfig(**overrides), total_updates=500)


def test_bad_sparse_options_fail_before_training(tmp_path):
    args = [
        "--total-steps",
        "2000",
        "--log-dir",
        str(tmp_path / "runs"),
        "--checkpoint-dir",
        str(tmp_path / "ck"),
        "--no-progress",
    ]
    with pytest.raises(ValueError, match=r"sparsity=1.0 is not valid; it must be in \[0, 1\)"):
        dqn_trainer.main([*args, "--sparsity", "1.0"])
    with pytest.raises(ValueError, match="nstep_delay=100000 is longer than the run"):
        dqn_trainer.main([*args, "--sparsity", "0.9", "--nstep-delay", "100000"])
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").rglob("*.pt"))


# --- export ---------------------------------------------------------------------------
def test_sparse_export_holds_only_non_zeros_and_loads_back(tmp_path):
    net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    hook = SparseTraining(UpdateEngine({"q": net}, EngineConfig(), 10), 0.9)
    state = export_sparse(net)
    assert state["2.weight"].layout == torch.sparse_csr
    assert state["2.weight"].values().numel() == int(hook.layers[1].mask.sum())
    torch.save(state, tmp_path / "sparse.pt")
    torch.save(net.state_dict(), tmp_path / "dense.pt")
    assert (tmp_path / "sparse.pt").stat().st_size < 0.5 * (tmp_path / "dense.pt").stat().st_size
    copy = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    load_sparse(copy, torch.load(tmp_path / "sparse.pt"))
    x = torch.randn(5, 16)
    assert torch.equal(copy(x), net(x))
    assert torch.allclose(csr_inference(net)(x), net(x), atol=1e-5)


# --- learning -------------------------------------------------------------------------
def test_rlx2_dqn_at_90_percent_sparsity_learns_cartpole(tmp_path):
    result = dqn_trainer.main(
        [
            "--env",
            "CartPole-v1",
            "--total-steps",
            "15000",
            "--eval-every",
            "2500",
            "--target-value",
            "150",
            "--stop-at-target",
            "--seed",
            "1",
            "--sparsity",
            "0.9",
            "--log-dir",
            str(tmp_path / "runs"),
            "--checkpoint-dir",
            str(tmp_path / "checkpoints"),
            "--no-progress",
        ]
    )
    assert result.steps_to_target is not None, result.summary()
    assert result.extra["density_q"] == "0.100"
    assert float(result.extra["train_flops"].rstrip("x")) < 0.25


def test_a_sparse_sac_run_resumes_exactly_through_the_trainer(tmp_path):
    from hmarl.trainers import sac_n

    from hmarl.training import load_checkpoint

    args = [
        "online",
        "--env",
        "Pendulum-v1",
        "--hidden-sizes",
        "32",
        "32",
        "--batch-size",
        "32",
        "--total-steps",
        "1200",
        "--learning-starts",
        "200",
        "--random-steps",
        "200",
        "--eval-every",
        "600",
        "--eval-episodes",
        "1",
        "--sparsity",
        "0.9",
        "--topology-period",
        "40",
        "--nstep-delay",
        "300",
        "--buffer-check-period",
        "50",
        "--buffer-min",
        "300",
        "--buffer-threshold",
        "0.001",
        "--checkpoint-every",
        "400",
        "--keep-checkpoints",
        "0",
        "--checkpoint-replay",
        "--run-name",
        "sparse",
        "--log-dir",
        str(tmp_path / "runs"),
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        "--no-progress",
    ]
    straight_result = sac_n.main(args)
    checkpoints = sorted((tmp_path / "checkpoints" / "sparse").glob("update_*.pt"))
    straight = load_checkpoint(checkpoints[-1])
    resumed_result = sac_n.main(["online", "--resume", str(checkpoints[0]), "--no-progress"])
    resumed = load_checkpoint(sorted((tmp_path / "checkpoints" / "sparse").glob("update_*.pt"))[-1])
    assert (
        resumed_result.summary().split(" wall=")[1].split(" ", 2)[2]
        == straight_result.summary().split(" wall=")[1].split(" ", 2)[2]
    )
    for engine in ("actor", "critic"):
        for name, tensor in straight["agent"][engine]["modules"].items():
            torch.testing.assert_close(resumed["agent"][engine]["modules"][name], tensor, rtol=0, atol=0)
        hooks = straight["agent"][engine]["hooks"]
        assert hooks[0]["topology_updates"] == resumed["agent"][engine]["hooks"][0]["topology_updates"] > 0
        for a, b in zip(hooks[0]["masks"], resumed["agent"][engine]["hooks"][0]["masks"], strict=True):
            assert torch.equal(a, b)
    replay = straight["agent"]["replay"]
    assert replay["filled_rows"] == resumed["agent"]["replay"]["filled_rows"] < 1000, "the buffer shrank"
    assert replay["n_step"] == resumed["agent"]["replay"]["n_step"] == 3
