"""Explicit environment state, the registry and input validation shared by every env."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from hmarl import envs
from hmarl.envs import trash_collection_v0
from hmarl.envs.trash_collection.layouts import parse_map
from hmarl.training.envs import make_vector_env

COORDINATION = "reward: coordination\npayoff: {payoff}\n{cycles}A.T.D\nA.T.D\n"


def test_registry_lists_and_finds_modules():
    assert envs.names() == ["basketball_defense_v1", "trash_collection_v0"]
    assert "basketball_defense_v0" in envs.names(deprecated=True)
    assert envs.get("trash_collection_v0") is trash_collection_v0
    with pytest.raises(ValueError, match="env='trash_collection_v9' is not an hmarl environment"):
        envs.get("trash_collection_v9")


def test_trainers_build_environments_through_the_registry():
    venv = make_vector_env("basketball_defense_v1", 3, {"n_players": 2})
    assert venv.metadata["name"] == "basketball_defense_v1" and venv.num_envs == 3
    with pytest.raises(ValueError, match=r"hmarl.envs has basketball_defense_v1"):
        make_vector_env("basketball_defense_v7", 3)


@pytest.mark.parametrize("payoff", ["nan 1 0", "1 inf 0", "1 1 -inf"])
def test_non_finite_payoffs_are_rejected(payoff):
    with pytest.raises(ValueError, match=r"payoff: .* must be finite numbers"):
        parse_map(COORDINATION.format(payoff=payoff, cycles=""))


@pytest.mark.parametrize("cycles", ["0", "1000001", "100000000000000000000000"])
def test_max_cycles_of_a_map_out_of_range_is_rejected(cycles):
    with pytest.raises(ValueError, match=r"max_cycles: \d+ must be in \[1, 1000000\]"):
        parse_map(COORDINATION.format(payoff="1 1 0", cycles=f"max_cycles: {cycles}\n"))


def test_max_cycles_argument_out_of_range_is_rejected():
    with pytest.raises(ValueError, match=r"max_cycles=10000000 is out of range; it must be in \[1, 1000000\]"):
        trash_collection_v0.vector_env(layout="ring", max_cycles=10_000_000)


@pytest.mark.parametrize("kwargs", [{"layout": "room"}, {"layout": "random", "n_agents": 3}])
def test_fresh_states_replace_only_the_done_copies(kwargs):
    venv = trash_collection_v0.vector_env(num_envs=6, **kwargs)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(7):
        venv.step(rng.integers(0, venv.n_actions, (6, venv.n_agents)))
    core = venv.core
    before = core.state.copy()
    done = np.array([True, False, False, True, False, True])
    core.state.where(done, core.fresh_state(6))
    after = core.state.fields()
    for name, value in before.fields().items():
        axis = type(before).axis_of(name)
        kept = np.flatnonzero(~done)
        np.testing.assert_array_equal(np.take(after[name], kept, axis), np.take(value, kept, axis))
    assert (core.t[done] == 0).all() and (core.t[~done] == 7).all()


def test_a_state_copy_is_independent():
    venv = trash_collection_v0.vector_env(num_envs=2, layout="ring")
    venv.reset(seed=0)
    copy = venv.core.state.copy()
    venv.step(np.full((2, 2), 3))
    assert (copy.t == 0).all() and (venv.core.t == 1).all()


def test_set_state_rejects_a_state_of_another_configuration():
    saved = trash_collection_v0.vector_env(num_envs=2, layout="ring").get_state()
    other = trash_collection_v0.vector_env(num_envs=3, layout="ring")
    with pytest.raises(ValueError, match=r"episode_return must have shape \(3, 2\)"):
        other.set_state(saved)
    with pytest.raises(ValueError, match=r"state field 't' must be int64 of shape \(3,\)"):
        other.core.set_state(saved["core"])
    with pytest.raises(ValueError, match="get_state"):
        other.set_state({"state": {}})


def test_returned_buffers_stay_valid_through_the_next_step():
    venv = trash_collection_v0.vector_env(num_envs=4, layout="room")
    obs, _ = venv.reset(seed=0)
    kept = obs["observation"].copy()
    nxt, *_ = venv.step(np.full((4, 2), 4))
    assert nxt["observation"] is not obs["observation"]
    np.testing.assert_array_equal(obs["observation"], kept)


def _plain(value) -> bool:
    """Whether ``value`` is made only of dicts, lists, tuples, numpy arrays and scalars."""
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    return isinstance(value, (np.ndarray, np.generic, int, float, bool, str, type(None)))


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("trash_collection_v0", {"layout": "room"}),
        ("trash_collection_v0", {"layout": "random", "view": "egocentric"}),
        ("basketball_defense_v1", {"n_players": 2}),
    ],
)
def test_a_checkpointed_env_is_plain_data_without_environment_objects(name, kwargs):
    # What a trainer's checkpoint stores for the environment (``env.get_state()``).
    venv = make_vector_env(name, num_envs=3, env_kwargs=kwargs)
    venv.reset(seed=0)
    venv.step(np.zeros((3, venv.n_agents), dtype=np.int64))
    saved = venv.get_state()
    assert _plain(saved)
    assert b"hmarl" not in pickle.dumps(saved)
    again = make_vector_env(name, num_envs=3, env_kwargs=kwargs)
    again.set_state(pickle.loads(pickle.dumps(saved)))
    actions = np.ones((3, venv.n_agents), dtype=np.int64)
    np.testing.assert_array_equal(again.step(actions)[0]["observation"], venv.step(actions)[0]["observation"])
