"""PettingZoo conformance of basketball_defense_v1, seeding and the two faces."""

from __future__ import annotations

import functools

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

from hmarl.envs import basketball_defense_v1

SIZES = [1, 3, 5]


@pytest.mark.parametrize("n_players", SIZES)
def test_api(n_players: int) -> None:
    api_test(basketball_defense_v1.env(n_players=n_players), num_cycles=200)


@pytest.mark.parametrize("n_players", SIZES)
def test_parallel_api(n_players: int) -> None:
    parallel_api_test(basketball_defense_v1.parallel_env(n_players=n_players), num_cycles=200)


@pytest.mark.parametrize("n_players", [1, 3])
def test_matched_view_api(n_players: int) -> None:
    api_test(basketball_defense_v1.env(n_players=n_players, view="matched"), num_cycles=200)
    parallel_api_test(basketball_defense_v1.parallel_env(n_players=n_players, view="matched"), num_cycles=200)


@pytest.mark.parametrize("n_players", SIZES)
def test_seed(n_players: int) -> None:
    seed_test(lambda: basketball_defense_v1.env(n_players=n_players), num_cycles=100)


def test_max_cycles() -> None:
    max_cycles_test(basketball_defense_v1)


@pytest.mark.parametrize("n_players", SIZES)
def test_render(n_players: int) -> None:
    render_test(lambda render_mode=None: basketball_defense_v1.env(n_players=n_players, render_mode=render_mode))


@pytest.mark.parametrize("n_players", SIZES)
def test_state(n_players: int) -> None:
    state_test(
        basketball_defense_v1.env(n_players=n_players),
        basketball_defense_v1.parallel_env(n_players=n_players),
    )


@pytest.mark.parametrize("n_players", [1, 3])
def test_multi_step_determinism(n_players: int) -> None:
    make_env = functools.partial(basketball_defense_v1.parallel_env, n_players=n_players)
    first = assert_deterministic(make_env, 300)
    assert finished_episodes(first) >= 2, "the rollout should span several possessions"
    assert not data_equivalence(first, seeded_rollout(make_env(), 8, 300, 1))


@pytest.mark.parametrize("n_players", [1, 3, 5])
def test_vector_and_parallel_faces_agree(n_players: int) -> None:
    assert assert_faces_agree(basketball_defense_v1, {"n_players": n_players}, 400, masked_actions=True) >= 3
