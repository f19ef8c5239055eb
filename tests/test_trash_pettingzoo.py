"""PettingZoo and SuperSuit conformance of ``trash_collection_v0``, and determinism."""

from __future__ import annotations

import functools
import types

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    render_test,
    seed_test,
    state_test,
)

from hmarl.envs.conformance import assert_deterministic, assert_faces_agree, finished_episodes, seeded_rollout

from hmarl.envs import trash_collection_v0

LAYOUTS = {
    "room": {},
    "ring": {},
    "coordination": {},
    "random": dict(layout="random", width=7, height=6, n_agents=3, n_trash=3, n_dumps=2),
}


def kwargs_of(name: str) -> dict:
    return LAYOUTS[name] or dict(layout=name)


@pytest.fixture(params=sorted(LAYOUTS))
def layout_kwargs(request) -> dict:
    return kwargs_of(request.param)


def test_api_test(layout_kwargs):
    api_test(trash_collection_v0.env(**layout_kwargs), num_cycles=60)


def test_parallel_api_test(layout_kwargs):
    parallel_api_test(trash_collection_v0.parallel_env(**layout_kwargs), num_cycles=60)


def test_seed_test(layout_kwargs):
    seed_test(functools.partial(trash_collection_v0.env, **layout_kwargs), num_cycles=60)


def test_max_cycles_test(layout_kwargs):
    module = types.SimpleNamespace(
        env=functools.partial(trash_collection_v0.env, **layout_kwargs),
        parallel_env=functools.partial(trash_collection_v0.parallel_env, **layout_kwargs),
    )
    max_cycles_test(module)


def test_render_test(layout_kwargs):
    render_test(functools.partial(trash_collection_v0.env, **layout_kwargs))


def test_state_test(layout_kwargs):
    state_test(
        trash_collection_v0.env(**layout_kwargs),
        trash_collection_v0.parallel_env(**layout_kwargs),
        num_cycles=30,
    )


def test_multi_step_determinism(layout_kwargs):
    make_env = functools.partial(trash_collection_v0.parallel_env, **layout_kwargs)
    first = assert_deterministic(make_env, 250)
    assert finished_episodes(first) >= 2
    if layout_kwargs.get("layout") == "random":
        assert not data_equivalence(first, seeded_rollout(make_env(), 8, 250, 1))


def test_faces_give_identical_trajectories(layout_kwargs):
    """The PettingZoo face and the batched face (one copy) step the same core rules."""
    assert assert_faces_agree(trash_collection_v0, layout_kwargs, 300, masked_actions=False) >= 2


def test_spaces_and_metadata():
    env = trash_collection_v0.parallel_env(layout="ring", extra_actions=3)
    agent = env.possible_agents[0]
    assert env.possible_agents == ["agent_0", "agent_1"]
    assert env.observation_space(agent) is env.observation_space(agent)
    assert env.action_space(agent).n == 10
    space = env.observation_space(agent)
    assert space["observation"].shape == (5 * 121 + 1,) and space["observation"].dtype == np.float32
    assert space["action_mask"].shape == (10,) and space["action_mask"].dtype == np.int8
    assert env.state_space.shape == (5 * 121 + 3,)
    assert env.metadata["name"] == "trash_collection_v0"
    assert env.metadata["is_parallelizable"] is True
    assert set(env.metadata["render_modes"]) == {"human", "rgb_array"}


def test_episode_end_infos_in_parallel_face():
    env = trash_collection_v0.parallel_env(layout="coordination", max_cycles=3)
    env.reset(seed=0)
    for _ in range(3):
        _, _, _, truncations, infos = env.step({agent: 4 for agent in env.agents})
    assert all(truncations.values())
    info = infos["agent_0"]
    assert info["episode_length"] == 3 and info["trash_collected"] == 0 and info["success"] is False
    assert info["invalid_action"] is False


@pytest.mark.parametrize("num_cpus", [0, 2])
def test_supersuit_vector_wrappers(num_cpus):
    import supersuit

    env = trash_collection_v0.parallel_env(layout="room")
    vec = supersuit.pettingzoo_env_to_vec_env_v1(env)
    vec = supersuit.concat_vec_envs_v1(vec, 3, num_cpus=num_cpus, base_class="gymnasium")
    observations, _ = vec.reset(seed=0)
    assert observations["observation"].shape == (6, 5 * 121 + 1)
    truncated = 0
    for _ in range(120):
        actions = np.array([vec.action_space.sample() for _ in range(vec.num_envs)])
        observations, rewards, _terminations, truncations, _infos = vec.step(actions)
        truncated += truncations.sum()
    assert rewards.shape == (6,) and observations["observation"].shape == (6, 5 * 121 + 1)
    assert truncated == 6
    vec.close()
