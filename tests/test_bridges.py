"""Bridges to other libraries: a short real training run of each, with masks honoured
and the terminal sparse reward reaching the library."""

from __future__ import annotations

import numpy as np
import pytest

# Basketball pays only when a possession ends: the reward every bridge must carry.
SPARSE = ("basketball_defense_v1", {"n_players": 2, "shot_clock_s": 2.0})


def recorded_returns(venv) -> list[float]:
    """Make ``venv.step`` record each finished episode's per-agent returns in lane order."""
    returns: list[float] = []
    step = venv.step

    def recording_step(actions):
        result = step(actions)
        done = result[2] | result[3]
        returns.extend(result[4]["episode_return"][done].ravel().tolist())
        return result

    venv.step = recording_step
    return returns


def parameters(module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel().copy() for p in module.parameters()])


def test_sb3_maskable_ppo_trains_with_masks_and_sees_our_returns():
    from sb3_contrib import MaskablePPO

    from hmarl.envs.bridges.sb3 import masked_vec_env

    name, kwargs = SPARSE
    env = masked_vec_env(name, 4, **kwargs)
    ours = recorded_returns(env.venv.venv)
    model = MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=128, n_epochs=1, seed=0)
    before = parameters(model.policy)
    model.learn(total_timesteps=2 * 64 * env.num_envs)
    assert model._n_updates == 2
    assert not np.allclose(before, parameters(model.policy)), "the loss did not move the policy"
    buffer = model.rollout_buffer
    taken = np.take_along_axis(buffer.action_masks, buffer.actions.astype(np.int64), axis=-1)
    assert taken.all(), "MaskablePPO sampled a masked action"
    seen = [info["r"] for info in model.ep_info_buffer]
    assert len(seen) >= 20 and any(r != 0 for r in seen)
    np.testing.assert_allclose(seen, ours[-len(seen) :], rtol=1e-6)


def epymarl_gymma_returns(key: str, time_limit: int, episodes: int, seed: int, **kwargs) -> tuple[list[float], list[dict]]:
    """Episode returns as EPyMARL's ``gymma`` environment and episode runner compute them:
    ``gym.make(key, max_episode_steps=...)`` under a ``TimeLimit``, common reward = sum
    over the reward list, the episode ends when ``terminated`` or truncated; infos are
    summed into running statistics, as the runner does."""
    import gymnasium
    from gymnasium.wrappers import TimeLimit

    env = TimeLimit(gymnasium.make(key, max_episode_steps=time_limit, **kwargs), max_episode_steps=time_limit)
    rng = np.random.default_rng(seed)
    returns, stats = [], []
    obs, _ = env.reset(seed=seed)
    for _ in range(episodes):
        episode_return, totals, done = 0.0, {}, False
        while not done:
            masks = np.asarray(env.unwrapped.get_avail_actions(), dtype=bool)
            actions = [int(rng.choice(np.flatnonzero(mask))) for mask in masks]
            obs, reward, terminated, truncated, info = env.step(actions)
            assert len(obs) == env.unwrapped.n_agents and env.unwrapped.state().shape == (env.unwrapped.state_size,)
            episode_return += float(sum(reward))
            totals = {k: totals.get(k, 0) + info.get(k, 0) for k in set(totals) | set(info)}
            done = terminated or truncated
        returns.append(episode_return)
        stats.append(totals)
        obs, _ = env.reset()
    return returns, stats


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gymnasium_ids_carry_the_terminal_reward_as_epymarl_reads_it():
    from hmarl.envs.bridges import gymnasium as bridge

    name, kwargs = SPARSE
    key = f"hmarl.envs.bridges.gymnasium:{bridge.gym_id(name)}"
    seen, stats = epymarl_gymma_returns(key, 200, 12, seed=3, **kwargs)
    # The same episodes, seeds and actions through the batched face.
    venv = __import__("hmarl.envs", fromlist=["get"]).get(name).vector_env(num_envs=1, **kwargs)
    ours = recorded_returns(venv)
    rng = np.random.default_rng(3)
    obs, _ = venv.reset(seed=3)
    while len(ours) < 12 * venv.n_agents:
        actions = [[int(rng.choice(np.flatnonzero(mask))) for mask in obs["action_mask"][0]]]
        obs, *_ = venv.step(actions)
    team = np.asarray(ours).reshape(12, venv.n_agents).sum(1)
    assert any(r != 0 for r in seen), "basketball pays at the end of every possession"
    np.testing.assert_allclose(seen, team, rtol=1e-6)
    assert all(isinstance(value, (int, float)) for totals in stats for value in totals.values())
    assert all(totals["episode_length"] > 0 for totals in stats)


def test_gymnasium_ids_are_registered_for_every_environment():
    import gymnasium

    from hmarl import envs
    from hmarl.envs.bridges import gymnasium as bridge

    assert sorted(bridge.IDS) == sorted(bridge.gym_id(name) for name in envs.names(deprecated=True))
    env = gymnasium.make("hmarl/trash_collection-v0", layout="ring", disable_env_checker=True)
    assert isinstance(env.observation_space, gymnasium.spaces.Tuple) and env.unwrapped.n_agents == 2
