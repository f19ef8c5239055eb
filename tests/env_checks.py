"""Checks every hmarl environment must pass, shared by the environments' test files:
seeded determinism over many steps and episodes, and the PettingZoo and batched faces
stepping identical trajectories."""

from __future__ import annotations

import types

import numpy as np
from gymnasium.utils.env_checker import data_equivalence


def seeded_rollout(env, seed: int, steps: int, action_seed: int) -> list:
    """Everything the parallel face returns over ``steps`` steps with seeded legal actions,
    resetting (without a new seed) whenever an episode ends."""
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


def assert_deterministic(make_env, steps: int) -> list:
    """Two runs with one seed agree on every value; returns the first run's record."""
    first = seeded_rollout(make_env(), 7, steps, 1)
    second = seeded_rollout(make_env(), 7, steps, 1)
    assert len(first) == len(second)
    for one, two in zip(first, second):
        assert data_equivalence(one, two)
    return first


def assert_faces_agree(module: types.ModuleType, kwargs: dict, steps: int, masked_actions: bool) -> int:
    """Step ``module.parallel_env`` and ``module.vector_env(num_envs=1)`` with the same seed
    and actions and compare everything both return; returns the finished episodes.

    ``masked_actions=False`` draws from the whole action space, so that actions without
    effect (blocked moves, contested cells) are part of what is compared."""
    parallel = module.parallel_env(**kwargs)
    vector = module.vector_env(num_envs=1, **kwargs)
    stat_names = (*vector.core.episode_stat_names, "episode_length")
    rng = np.random.default_rng(0)
    observations, _ = parallel.reset(seed=11)
    batch, _ = vector.reset(seed=11)
    agents = parallel.possible_agents
    episodes = 0
    for _ in range(steps):
        for i, agent in enumerate(agents):
            np.testing.assert_array_equal(observations[agent]["observation"], batch["observation"][0, i])
            np.testing.assert_array_equal(observations[agent]["action_mask"], batch["action_mask"][0, i])
        np.testing.assert_array_equal(parallel.state(), batch["state"][0])
        if masked_actions:
            actions = np.array([[rng.choice(np.flatnonzero(observations[a]["action_mask"])) for a in agents]])
        else:
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
            for name in stat_names:
                assert infos[agents[0]][name] == batch_infos[name][0]
            for i, agent in enumerate(agents):
                np.testing.assert_array_equal(
                    observations[agent]["observation"], batch_infos["final_observation"][0, i]
                )
            observations, _ = parallel.reset()
    return episodes


def finished_episodes(record: list) -> int:
    """Episodes that ended in a :func:`seeded_rollout` record: the step infos of the
    parallel face carry ``episode_length`` only when an episode ends."""
    return sum(
        isinstance(item, dict)
        and any(isinstance(info, dict) and "episode_length" in info for info in item.values())
        for item in record
    )
