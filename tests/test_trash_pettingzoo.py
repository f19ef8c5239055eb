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


def rollout(env, seed: int, steps: int, action_seed: int) -> list:
    """Everything the parallel face returns over ``steps`` steps with seeded masked actions."""
    rng = np.random.default_rng(action_seed)
    observations, infos = env.reset(seed=seed)
    record = [observations, infos, env.state()]
    for _ in range(steps):
        if not env.agents:
            observations, infos = env.reset()
            record += [observations, infos]
        actions = {
            agent: int(rng.choice(np.flatnonzero(observations[agent]["action_mask"])))
            for agent in env.agents
        }
        observations, *rest = env.step(actions)
        record += [actions, observations, *rest, env.state()]
    return record


def test_multi_step_determinism(layout_kwargs):
    first = rollout(trash_collection_v0.parallel_env(**layout_kwargs), 7, 250, 1)
    second = rollout(trash_collection_v0.parallel_env(**layout_kwargs), 7, 250, 1)
    assert len(first) == len(second)
    for one, two in zip(first, second):
        assert data_equivalence(one, two)
    other_seed = rollout(trash_collection_v0.parallel_env(**layout_kwargs), 8, 250, 1)
    if layout_kwargs.get("layout") == "random":
        assert not data_equivalence(first, other_seed)


def test_faces_give_identical_trajectories(layout_kwargs):
    """The PettingZoo face and the batched face (one copy) step the same core rules."""
    parallel = trash_collection_v0.parallel_env(**layout_kwargs)
    vector = trash_collection_v0.vector_env(num_envs=1, **layout_kwargs)
    rng = np.random.default_rng(0)
    observations, _ = parallel.reset(seed=11)
    batch, _ = vector.reset(seed=11)
    agents = parallel.possible_agents
    episodes = 0
    for _ in range(300):
        for i, agent in enumerate(agents):
            np.testing.assert_array_equal(observations[agent]["observation"], batch["observation"][0, i])
            np.testing.assert_array_equal(observations[agent]["action_mask"], batch["action_mask"][0, i])
        np.testing.assert_array_equal(parallel.state(), batch["state"][0])
        # Unmasked actions: blocked moves and contested cells are part of what is compared.
        actions = rng.integers(0, vector.n_actions, (1, len(agents)))
        observations, rewards, terminations, truncations, infos = parallel.step(
            {agent: actions[0, i] for i, agent in enumerate(agents)}
        )
        batch, batch_rewards, batch_terminated, batch_truncated, batch_infos = vector.step(actions)
        for i, agent in enumerate(agents):
            assert rewards[agent] == batch_rewards[0, i]
            assert infos[agent]["invalid_action"] == batch_infos["invalid_action"][0, i]
        assert terminations[agents[0]] == batch_terminated[0]
        assert truncations[agents[0]] == batch_truncated[0]
        if batch_terminated[0] or batch_truncated[0]:
            episodes += 1
            for key in ("trash_collected", "success", "episode_length"):
                assert infos[agents[0]][key] == batch_infos[key][0]
            for i, agent in enumerate(agents):
                np.testing.assert_array_equal(
                    observations[agent]["observation"], batch_infos["final_observation"][0, i]
                )
            observations, _ = parallel.reset()
    assert episodes >= 2


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
        observations, rewards, terminations, truncations, infos = vec.step(actions)
        truncated += truncations.sum()
    assert rewards.shape == (6,) and observations["observation"].shape == (6, 5 * 121 + 1)
    assert truncated == 6
    vec.close()
