"""PettingZoo conformance of basketball_defense_v0, seeding and the two faces."""

from __future__ import annotations

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

from hmarl.envs import basketball_defense_v0

SIZES = [1, 3, 5]


@pytest.mark.parametrize("n_players", SIZES)
def test_api(n_players: int) -> None:
    api_test(basketball_defense_v0.env(n_players=n_players), num_cycles=200)


@pytest.mark.parametrize("n_players", SIZES)
def test_parallel_api(n_players: int) -> None:
    parallel_api_test(basketball_defense_v0.parallel_env(n_players=n_players), num_cycles=200)


@pytest.mark.parametrize("n_players", SIZES)
def test_seed(n_players: int) -> None:
    seed_test(lambda: basketball_defense_v0.env(n_players=n_players), num_cycles=100)


def test_max_cycles() -> None:
    max_cycles_test(basketball_defense_v0)


@pytest.mark.parametrize("n_players", SIZES)
def test_render(n_players: int) -> None:
    render_test(lambda render_mode=None: basketball_defense_v0.env(n_players=n_players, render_mode=render_mode))


@pytest.mark.parametrize("n_players", SIZES)
def test_state(n_players: int) -> None:
    state_test(
        basketball_defense_v0.env(n_players=n_players),
        basketball_defense_v0.parallel_env(n_players=n_players),
    )


def _parallel_rollout(seed: int, n_players: int, steps: int) -> list:
    """A trajectory of the parallel face under seeded random legal actions, across episodes."""
    env = basketball_defense_v0.parallel_env(n_players=n_players)
    rng = np.random.default_rng(seed + 1)
    obs, _ = env.reset(seed=seed)
    trajectory = []
    for _ in range(steps):
        if not env.agents:
            obs, _ = env.reset()
        actions = {
            agent: int(rng.choice(np.flatnonzero(obs[agent]["action_mask"]))) for agent in env.agents
        }
        obs, rewards, terminations, truncations, infos = env.step(actions)
        trajectory.append((actions, obs, rewards, terminations, truncations, infos, env.state()))
    return trajectory


@pytest.mark.parametrize("n_players", [1, 3])
def test_multi_step_determinism(n_players: int) -> None:
    first = _parallel_rollout(7, n_players, 300)
    second = _parallel_rollout(7, n_players, 300)
    assert sum(step[3][next(iter(step[3]))] for step in first) >= 2, "rollout should span episodes"
    for a, b in zip(first, second):
        assert data_equivalence(a, b)
    different = _parallel_rollout(8, n_players, 300)
    assert not all(data_equivalence(a[1], b[1]) for a, b in zip(first, different))


@pytest.mark.parametrize("n_players", [1, 3, 5])
def test_vector_and_parallel_faces_agree(n_players: int) -> None:
    parallel = basketball_defense_v0.parallel_env(n_players=n_players)
    vector = basketball_defense_v0.vector_env(num_envs=1, n_players=n_players)
    rng = np.random.default_rng(0)
    obs, _ = parallel.reset(seed=11)
    vobs, _ = vector.reset(seed=11)
    agents = parallel.possible_agents
    episodes = 0
    for _ in range(400):
        if not parallel.agents:
            obs, _ = parallel.reset()
        stacked = np.stack([obs[agent]["observation"] for agent in agents])
        np.testing.assert_array_equal(stacked, vobs["observation"][0])
        np.testing.assert_array_equal(
            np.stack([obs[agent]["action_mask"] for agent in agents]), vobs["action_mask"][0]
        )
        np.testing.assert_array_equal(parallel.state(), vobs["state"][0])
        actions = np.array([rng.choice(np.flatnonzero(obs[agent]["action_mask"])) for agent in agents])
        obs, rewards, terminations, truncations, infos = parallel.step(dict(zip(agents, actions)))
        vobs, vrewards, vterm, vtrunc, vinfos = vector.step(actions[None])
        np.testing.assert_array_equal([rewards[agent] for agent in agents], vrewards[0])
        assert terminations[agents[0]] == vterm[0] and truncations[agents[0]] == vtrunc[0]
        assert [infos[agent]["invalid_action"] for agent in agents] == list(vinfos["invalid_action"][0])
        if vterm[0] or vtrunc[0]:
            episodes += 1
            for name in ("outcome", "points_allowed", "shot", "miss", "block", "steal", "episode_length"):
                assert infos[agents[0]][name] == vinfos[name][0]
            np.testing.assert_array_equal(
                np.stack([obs[agent]["observation"] for agent in agents]), vinfos["final_observation"][0]
            )
            obs, _ = parallel.reset()
    assert episodes >= 3
