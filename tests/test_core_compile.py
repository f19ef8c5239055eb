"""Compiled updates: the same parameters as eager, finiteness read on the device, hooks
that cannot be captured, CUDA graphs, and the options' checks."""

import logging

import pytest
import torch

from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.core import (
    EngineConfig,
    NonFiniteLossError,
    UpdateEngine,
    ZeroGradientFraction,
)
from hmarl.nets import mlp

STREAMS, OBS_DIM, ACTIONS = 8, 10, 4


def filled_dqn(compile: str, device: str = "cpu", **overrides) -> DQN:
    torch.manual_seed(0)
    config = DQNConfig(
        batch_size=32,
        buffer_size=1024,
        hidden_sizes=(32, 32),
        use_action_mask=False,
        compile=compile,
        target_update_period=3,
        **overrides,
    )
    agent = DQN(config, OBS_DIM, ACTIONS, STREAMS, total_steps=10**4, total_updates=10**4, device=torch.device(device))
    generator = torch.Generator().manual_seed(0)
    for _ in range(64):
        agent.replay.add(
            {
                name: value.to(device)
                for name, value in {
                    "observation": torch.rand(STREAMS, OBS_DIM, generator=generator),
                    "action": torch.randint(ACTIONS, (STREAMS,), generator=generator),
                    "reward": torch.rand(STREAMS, generator=generator),
                    "next_observation": torch.rand(STREAMS, OBS_DIM, generator=generator),
                    "terminated": torch.rand(STREAMS, generator=generator) < 0.1,
                    "truncated": torch.zeros(STREAMS, dtype=torch.bool),
                }.items()
            }
        )
    return agent


def engine_tensors(engine: UpdateEngine) -> list[torch.Tensor]:
    state = [value for per_param in engine.optimizer.state.values() for value in per_param.values()]
    return [*engine.modules.parameters(), *engine.targets.parameters(), *state]


def updated(agent: DQN, updates: int) -> list[dict]:
    torch.manual_seed(1)
    return [agent.update() for _ in range(updates)]


def test_compiled_update_gives_the_parameters_of_eager_and_keeps_a_non_finite_one_out():
    eager, compiled = filled_dqn("none"), filled_dqn("default")
    assert compiled.engine.deferred and not eager.engine.deferred
    eager_metrics, compiled_metrics = updated(eager, 7), updated(compiled, 7)
    # Metrics stay on the device until read; the values are eager's.
    assert torch.is_tensor(compiled_metrics[-1]["loss"])
    for a, b in zip(eager_metrics, compiled_metrics, strict=True):
        assert float(b["loss"]) == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
    # Seven updates with a hard target copy every three: parameters, targets, Adam's moments.
    for a, b in zip(engine_tensors(eager.engine), engine_tensors(compiled.engine), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    compiled.engine.check_finite()

    # A non-finite batch: the update changes nothing, nor do the ones after it, and the
    # next read says so.
    before = [t.clone() for t in engine_tensors(compiled.engine)]
    compiled.replay.storage["reward"].fill_(float("nan"))
    for _ in range(3):
        compiled.update()
    for a, b in zip(before, engine_tensors(compiled.engine), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(NonFiniteLossError, match=r"between 8 and 10; the parameters, the optimiser's state and"):
        compiled.engine.check_finite()


def tiny_engine(**overrides) -> tuple[UpdateEngine, torch.nn.Module]:
    torch.manual_seed(0)
    net = mlp(4, [8], 2)
    config = EngineConfig(batch_size=16, target_update="polyak", tau=0.1, **overrides)
    return UpdateEngine({"net": net}, config, total_updates=100, targets=["net"]), net


def regression(net, scale=1.0):
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=generator), torch.randn(16, 2, generator=generator)

    def loss_fn(batch):
        return ((net(batch[0]) - batch[1]) ** 2).mean() * scale, {}

    return loss_fn, (x, y)


def test_a_hook_that_cannot_be_captured_runs_the_deferred_update_eagerly(caplog):
    engine, net = tiny_engine(compile="default")
    engine.add_hook(ZeroGradientFraction())
    loss_fn, batch = regression(net)
    reference, reference_net = tiny_engine()
    reference_loss, _ = regression(reference_net)
    with caplog.at_level(logging.WARNING, logger="hmarl.core.engine"):
        for _ in range(3):
            engine.update(loss_fn, batch)
            reference.update(reference_loss, batch)
    said = [record.getMessage() for record in caplog.records if "cannot be captured" in record.getMessage()]
    assert len(said) == 1 and "ZeroGradientFraction" in said[0]
    assert not engine._compiled_steps, "nothing was compiled"
    for a, b in zip(engine_tensors(reference), engine_tensors(engine), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)

    engine.check_finite()
    before = [t.clone() for t in engine_tensors(engine)]
    nan_loss, _ = regression(net, scale=float("nan"))
    engine.update(nan_loss, batch)
    engine.update(loss_fn, batch)  # masked as well: the run stops at the next read
    for a, b in zip(before, engine_tensors(engine), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(NonFiniteLossError, match="between 4 and 5"):
        engine.check_finite()
    engine.check_finite()  # read: the next reads start afresh


def test_the_learning_rate_is_a_tensor_the_schedule_writes_into():
    engine, net = tiny_engine(compile="default", schedule="cosine")
    engine.add_hook(ZeroGradientFraction())
    loss_fn, batch = regression(net)
    lr = engine.optimizer.param_groups[0]["lr"]
    assert torch.is_tensor(lr)
    rates = [engine.update(loss_fn, batch)["lr"] for _ in range(3)]
    assert engine.optimizer.param_groups[0]["lr"] is lr
    assert float(lr) == pytest.approx(rates[-1]) and rates[0] > rates[-1]


@pytest.mark.parametrize(("saved_mode", "loaded_mode"), [("none", "default"), ("default", "none")])
def test_a_checkpoint_resumes_in_the_other_mode(saved_mode, loaded_mode):
    engines = {}
    for mode in (saved_mode, loaded_mode):
        engine, net = tiny_engine(compile=mode)
        engine.add_hook(ZeroGradientFraction())  # keeps the deferred step eager: nothing to compile
        engines[mode] = (engine, net)
    saved, saved_net = engines[saved_mode]
    loss_fn, batch = regression(saved_net)
    for _ in range(3):
        saved.update(loss_fn, batch)
    state = saved.state_dict()
    assert all(isinstance(group["lr"], float) for group in state["optimizer"]["param_groups"])
    loaded, loaded_net = engines[loaded_mode]
    loaded.load_state_dict(state)
    lr = loaded.optimizer.param_groups[0]["lr"]
    assert torch.is_tensor(lr) == loaded.deferred
    assert loaded.optimizer.param_groups[0].get("foreach") == (not loaded.deferred)
    loaded_loss, _ = regression(loaded_net)
    saved.update(loss_fn, batch)
    loaded.update(loaded_loss, batch)
    for a, b in zip(engine_tensors(saved), engine_tensors(loaded), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"compile": "fast"}, r"compile='fast' is not valid; choose one of \['none', 'default', 'max-autotune'\]"),
        ({"cuda_graphs": True}, r"cuda_graphs=True needs compile='default' or 'max-autotune'"),
        pytest.param(
            {"cuda_graphs": True, "compile": "default"},
            r"cuda_graphs=True needs a CUDA device.*cpu",
            id="cuda_graphs-on-cpu",
        ),
    ],
)
def test_bad_compile_options_are_refused_before_work(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_engine(**overrides)


def test_trainers_take_the_compile_options():
    from hmarl.training.config import build_parser

    parser = build_parser(DQNConfig)
    text = parser.format_help()
    assert "--compile {none,default,max-autotune}" in text and "--cuda-graphs" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--compile", "fast"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need CUDA")
def test_captured_update_gives_the_parameters_of_eager_on_cuda():
    eager = filled_dqn("none", "cuda", bf16=False)
    captured = filled_dqn("default", "cuda", bf16=False, cuda_graphs=True)
    updated(eager, 7)
    updated(captured, 7)
    for a, b in zip(engine_tensors(eager.engine), engine_tensors(captured.engine), strict=True):
        torch.testing.assert_close(b, a.to(b.device), rtol=1e-3, atol=1e-5)
    captured.engine.check_finite()
