"""The conformance kit: checks every hmarl environment passes, usable on any environment
module that follows the package's conventions (``env``, ``parallel_env``, ``vector_env``).

* :func:`pettingzoo_battery` - PettingZoo's own test suite (API, parallel API, seeding,
  ``max_cycles``, ``state``, optionally rendering);
* :func:`assert_deterministic` - one seed, one trajectory, over many steps and episodes
  (PettingZoo's ``parallel_seed_test`` compares a single step);
* :func:`assert_faces_agree` - the PettingZoo face and the batched face step identical
  trajectories for the same seed and actions;
* :func:`assert_state_roundtrip` - ``get_state``/``set_state`` continue exactly;
* :func:`assert_invariants` - observations, masks and states inside their spaces, and
  every masked action that is taken reported in ``invalid_action``.

:func:`check_environment` runs them all. Failures raise ``AssertionError`` naming what
differed; nothing here needs pytest.

>>> from hmarl.envs import conformance, trash_collection_v0
>>> conformance.check_environment(trash_collection_v0, {"layout": "ring"})
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from gymnasium.utils.env_checker import data_equivalence


def pettingzoo_battery(
    module: types.ModuleType, kwargs: Mapping[str, Any] | None = None, num_cycles: int = 60, render: bool = False
) -> None:
    """PettingZoo's ``api_test``, ``parallel_api_test``, ``seed_test``,
    ``max_cycles_test`` and ``state_test`` (and ``render_test`` if ``render``)."""
    from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, render_test, seed_test, state_test

    kwargs = dict(kwargs or {})
    env_fn = functools.partial(module.env, **kwargs)
    parallel_fn = functools.partial(module.parallel_env, **kwargs)
    api_test(env_fn(), num_cycles=num_cycles)
    parallel_api_test(parallel_fn(), num_cycles=num_cycles)
    seed_test(env_fn, num_cycles=num_cycles)
    max_cycles_test(types.SimpleNamespace(env=env_fn, parallel_env=parallel_fn))
    state_test(env_fn(), parallel_fn(), num_cycles=num_cycles)
    if render:
        render_test(env_fn)


def seeded_rollout(env: Any, seed: int, steps: int, action_seed: int) -> list:
    """Everything the parallel face returns over ``steps`` steps with seeded legal actions,
    resetting (without a new seed) whenever an episode ends."""
    rng = np.random.default_rng(action_seed)
    observations, infos = env.reset(seed=seed)
    record = [observations, infos, env.state()]
    for _ in range(steps):
        if not env.agents:
            observations, infos = env.reset()
            record += [observations, infos]
        actions = {agent: int(rng.choice(np.flatnonzero(observations[agent]["action_mask"]))) for agent in env.agents}
        observations, *rest = env.step(actions)
        record += [actions, observations, *rest, env.state()]
    return record


def finished_episodes(record: list) -> int:
    """Episodes that ended in a :func:`seeded_rollout` record: the step infos of the
    parallel face carry ``episode_length`` only when an episode ends."""
    return sum(
        isinstance(item, dict) and any(isinstance(info, dict) and "episode_length" in info for info in item.values())
        for item in record
    )


def assert_deterministic(make_env: Callable[[], Any], steps: int) -> list:
    """Two runs with one seed agree on every value; returns the first run's record."""
    first = seeded_rollout(make_env(), 7, steps, 1)
    second = seeded_rollout(make_env(), 7, steps, 1)
    assert len(first) == len(second), "two runs with one seed returned different numbers of values"
    for index, (one, two) in enumerate(zip(first, second, strict=True)):
        assert data_equivalence(one, two), f"two runs with one seed differ at record item {index}"
    return first


def assert_faces_agree(module: types.ModuleType, kwargs: Mapping[str, Any], steps: int, masked_actions: bool) -> int:
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
            assert rewards[agent] == batch_rewards[0, i], "the faces' rewards differ"
            assert infos[agent]["invalid_action"] == batch_infos["invalid_action"][0, i], "the faces' invalid_action differ"
        assert terminations[agents[0]] == batch_terminated[0], "the faces' terminations differ"
        assert truncations[agents[0]] == batch_truncated[0], "the faces' truncations differ"
        if batch_terminated[0] or batch_truncated[0]:
            episodes += 1
            for name in stat_names:
                assert infos[agents[0]][name] == batch_infos[name][0], f"the faces' {name} differ"
            for i, agent in enumerate(agents):
                np.testing.assert_array_equal(observations[agent]["observation"], batch_infos["final_observation"][0, i])
            observations, _ = parallel.reset()
    return episodes


def _vector_rollout(venv: Any, actions: np.ndarray) -> list:
    record = []
    for step_actions in actions:
        obs, rewards, terminated, truncated, infos = venv.step(step_actions)
        done = terminated | truncated
        record.append(
            [
                {key: value.copy() for key, value in obs.items()},
                rewards,
                terminated,
                truncated,
                infos["invalid_action"],
                infos["episode_return"][done],
                infos["final_observation"][done],
            ]
        )
    return record


def assert_state_roundtrip(module: types.ModuleType, kwargs: Mapping[str, Any], num_envs: int = 4, steps: int = 60) -> None:
    """A batched env set to a :meth:`get_state` taken mid-run repeats the run from there,
    in the same env and in a fresh one, including resets and random draws."""
    venv = module.vector_env(num_envs=num_envs, **kwargs)
    venv.reset(seed=3)
    rng = np.random.default_rng(5)
    warmup = rng.integers(0, venv.n_actions, (steps, num_envs, venv.n_agents))
    actions = rng.integers(0, venv.n_actions, (steps, num_envs, venv.n_agents))
    _vector_rollout(venv, warmup)
    saved = venv.get_state()
    first = _vector_rollout(venv, actions)
    venv.set_state(saved)
    again = _vector_rollout(venv, actions)
    fresh = module.vector_env(num_envs=num_envs, **kwargs)
    fresh.set_state(saved)
    elsewhere = _vector_rollout(fresh, actions)
    assert data_equivalence(first, again), "set_state() in the same env did not repeat the run"
    assert data_equivalence(first, elsewhere), "set_state() in a fresh env did not repeat the run"


def assert_invariants(
    module: types.ModuleType,
    kwargs: Mapping[str, Any],
    num_envs: int = 8,
    steps: int = 200,
    masked: bool = False,
    seed: int = 0,
) -> int:
    """Step ``num_envs`` copies with random actions (legal ones if ``masked``) and check
    that observations and states (the final ones of finished episodes too) lie in the
    PettingZoo spaces, rewards are finite, and a taken action that the mask forbade is
    reported invalid; returns the copy-steps."""
    venv = module.vector_env(num_envs=num_envs, **kwargs)
    spaces = module.parallel_env(**kwargs)
    agent = spaces.possible_agents[0]
    observation_space = spaces.observation_space(agent)["observation"]
    state_space = spaces.state_space
    rng = np.random.default_rng(seed)
    obs, _ = venv.reset(seed=seed)
    for step in range(steps):
        _check_spaces(obs, observation_space, state_space, step)
        mask = obs["action_mask"].astype(bool)
        if masked:
            scores = rng.random(mask.shape) + mask
            actions = scores.argmax(-1)
        else:
            actions = rng.integers(0, venv.n_actions, mask.shape[:2])
        forbidden = ~np.take_along_axis(mask, actions[..., None], -1)[..., 0]
        obs, rewards, terminations, truncations, infos = venv.step(actions)
        assert np.isfinite(rewards).all(), f"non-finite reward at step {step}"
        done = terminations | truncations
        if done.any():
            final = {"observation": infos["final_observation"][done], "state": infos["final_state"][done]}
            _check_spaces(final, observation_space, state_space, step, masks=False)
        missed = forbidden & ~infos["invalid_action"]
        assert not missed.any(), f"step {step}: masked actions {actions[missed].tolist()} took effect without invalid_action"
    return steps * num_envs


def _check_spaces(
    obs: Mapping[str, np.ndarray], observation_space: Any, state_space: Any, step: int, masks: bool = True
) -> None:
    for name, values, space in (("observation", obs["observation"], observation_space), ("state", obs["state"], state_space)):
        inside = (values >= space.low) & (values <= space.high)
        assert inside.all() and values.dtype == space.dtype, f"step {step}: an {name} lies outside its space"
    if masks:
        assert set(np.unique(obs["action_mask"]).tolist()) <= {0, 1}, f"step {step}: a mask is not 0/1"


def check_environment(
    module: types.ModuleType, kwargs: Mapping[str, Any] | None = None, steps: int = 200, render: bool = False
) -> None:
    """Every check of this kit on ``module`` built with ``kwargs``."""
    kwargs = dict(kwargs or {})
    pettingzoo_battery(module, kwargs, render=render)
    assert_deterministic(functools.partial(module.parallel_env, **kwargs), steps)
    assert_faces_agree(module, kwargs, steps, masked_actions=False)
    assert_faces_agree(module, kwargs, steps, masked_actions=True)
    assert_state_roundtrip(module, kwargs)
    assert_invariants(module, kwargs, steps=steps, masked=False)
    assert_invariants(module, kwargs, steps=steps, masked=True)
