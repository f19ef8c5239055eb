"""AgileRL's IPPO learns on an hmarl environment with the masks in the infos: two
updates, no masked action taken, and the episode scores AgileRL's trainer would sum
equal our returns."""

from __future__ import annotations

import numpy as np
from agilerl.algorithms import IPPO
from conftest import SPARSE_ENV, SPARSE_KWARGS, ReturnRecorder, parameters

from hmarl.envs.bridges.agilerl import parallel_env


def batched(values: dict) -> dict:
    return {agent: np.asarray(value)[None] for agent, value in values.items()}


def test_ippo_learns_with_masks_in_infos_and_our_returns():
    env = parallel_env(SPARSE_ENV, **SPARSE_KWARGS)
    recorder = ReturnRecorder(env.env)
    ids = env.possible_agents
    agent = IPPO(
        [env.observation_space(a) for a in ids],
        [env.action_space(a) for a in ids],
        agent_ids=ids,
        learn_step=128,
        batch_size=64,
        update_epochs=1,
    )
    before = np.concatenate([parameters(actor) for actor in agent.actors.values()])
    obs, info = env.reset(seed=0)
    scores, running, masked_taken = [], 0.0, 0
    for _ in range(2):
        states, actions, log_probs, rewards, dones, values = ({a: [] for a in ids} for _ in range(6))
        done = {a: np.zeros(1) for a in ids}
        for _ in range(agent.learn_step):
            action, log_prob, _, value = agent.get_action(obs=batched(obs), infos=info)
            masked_taken += sum(not info[a]["action_mask"][int(action[a][0])] for a in ids)
            next_obs, reward, termination, truncation, info = env.step({a: int(action[a][0]) for a in ids})
            running += sum(reward.values())
            for a in ids:
                states[a].append(np.asarray(obs[a])[None])
                actions[a].append(action[a])
                log_probs[a].append(log_prob[a])
                rewards[a].append(np.array([reward[a]]))
                dones[a].append(done[a])
                values[a].append(value[a])
            done = {a: np.array([float(termination[a] or truncation[a])]) for a in ids}
            obs = next_obs
            if not env.agents:
                scores.append(running)
                running = 0.0
                obs, info = env.reset()
        agent.learn((states, actions, log_probs, rewards, dones, values, batched(obs), done))
    assert masked_taken == 0, "IPPO sampled a masked action"
    after = np.concatenate([parameters(actor) for actor in agent.actors.values()])
    assert not np.allclose(before, after), "the loss did not move the policy"
    ours = [sum(episode.values()) for episode in recorder.returns]
    assert len(scores) >= 5 and any(score != 0 for score in scores)
    np.testing.assert_allclose(scores, ours, rtol=1e-6)
