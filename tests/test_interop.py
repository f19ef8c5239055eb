"""The environments plug into other MARL libraries as they are."""

import numpy as np
import pytest
import supersuit
from tianshou.env import PettingZooEnv
from torchrl.envs import PettingZooWrapper

from hmarl.envs import basketball_defense_v1, trash_collection_v0

ENVS = [
    pytest.param(trash_collection_v0, {"layout": "room"}, "agent", id="trash_room"),
    pytest.param(basketball_defense_v1, {"n_players": 3}, "defender", id="basketball_3v3"),
]


@pytest.mark.parametrize(("module", "kwargs", "group"), ENVS)
def test_torchrl_wrapper_rolls_out_with_masks_and_state(module, kwargs, group):
    env = PettingZooWrapper(module.parallel_env(**kwargs), use_mask=True, return_state=True, seed=0)
    rollout = env.rollout(25, break_when_any_done=False)
    assert rollout.batch_size == (25,)
    n_agents = len(module.parallel_env(**kwargs).possible_agents)
    assert rollout[group, "action_mask"].shape[:2] == (25, n_agents)
    assert rollout["state"].shape[0] == 25


@pytest.mark.parametrize(("module", "kwargs", "group"), ENVS)
def test_tianshou_wrapper_plays_an_episode_with_legal_actions(module, kwargs, group):
    env = PettingZooEnv(module.env(**kwargs))
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        assert obs["agent_id"].startswith(group)
        obs, _, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(obs["mask"]))))
        if terminated or truncated:
            break
    assert terminated or truncated


def test_supersuit_vector_env_of_agents():
    vec = supersuit.pettingzoo_env_to_vec_env_v1(trash_collection_v0.parallel_env(layout="ring"))
    vec = supersuit.concat_vec_envs_v1(vec, 3, num_cpus=0, base_class="gymnasium")
    obs, _ = vec.reset(seed=0)
    assert obs["observation"].shape[0] == 6
    actions = np.full(6, 4)
    _, rewards, _, _, _ = vec.step(actions)
    assert rewards.shape == (6,)


@pytest.mark.parametrize(("module", "kwargs", "group"), ENVS)
def test_torchrl_tutorial_keys_through_masks_in_infos(module, kwargs, group):
    from hmarl.envs.bridges.pettingzoo import MasksInInfos

    env = MasksInInfos(module.parallel_env(**kwargs))
    wrapped = PettingZooWrapper(env, return_state=True, seed=0, group_map={"agents": env.possible_agents})
    rollout = wrapped.rollout(25, break_when_any_done=False)
    n_agents = len(env.possible_agents)
    assert rollout["agents", "observation"].shape[:2] == (25, n_agents)
    mask = rollout["agents", "action_mask"]
    taken = mask.gather(-1, rollout["agents", "action"].unsqueeze(-1))
    assert mask.shape[:2] == (25, n_agents) and taken.all()
