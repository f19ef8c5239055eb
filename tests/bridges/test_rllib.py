"""RLlib trains PPO with the masking RLModule on an hmarl environment: two iterations,
no masked action taken, and RLlib's episode returns equal ours."""

from __future__ import annotations

import numpy as np
import pytest
import ray
from conftest import SPARSE_ENV, SPARSE_KWARGS, ReturnRecorder, parameters
from ray.rllib.callbacks.callbacks import RLlibCallback

from hmarl import envs
from hmarl.envs.bridges.rllib import SHARED_POLICY, HmarlMultiAgentEnv, masked_ppo_config

SEEN: list[float] = []


class EpisodeReturns(RLlibCallback):
    def on_episode_end(self, *, episode, **kwargs):
        SEEN.append(float(episode.get_return()))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_masked_ppo_trains_with_masks_and_our_returns(local_ray, monkeypatch):
    module = envs.get(SPARSE_ENV)
    recorders: list[ReturnRecorder] = []
    masked_taken = []
    make = module.parallel_env

    def recorded_parallel_env(**kwargs):
        env = make(**kwargs)
        recorders.append(ReturnRecorder(env))
        step, reset, last = env.step, env.reset, {}

        def checking_reset(*args, **kw):
            observations, infos = reset(*args, **kw)
            last.update(observations)
            return observations, infos

        def checking_step(actions):
            masked_taken.extend(
                (a, int(act), last[a]["action_mask"].tolist(), int(env.core.t[0]))
                for a, act in actions.items()
                if not last[a]["action_mask"][act]
            )
            result = step(actions)
            last.update(result[0])
            return result

        env.step, env.reset = checking_step, checking_reset
        return env

    monkeypatch.setattr(module, "parallel_env", recorded_parallel_env)
    config = (
        masked_ppo_config(SPARSE_ENV, SPARSE_KWARGS)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1)
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=1)
        .callbacks(EpisodeReturns)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    # RLlib's environment checker steps once with unmasked random actions; training starts here.
    masked_taken.clear()
    before = parameters(algo.get_module(SHARED_POLICY))
    for _ in range(2):
        algo.train()
    assert not np.allclose(before, parameters(algo.get_module(SHARED_POLICY))), "the loss did not move the policy"
    assert masked_taken == [], "RLlib took masked actions"
    ours = [sum(episode.values()) for recorder in recorders for episode in recorder.returns]
    assert len(SEEN) >= 10 and any(value != 0 for value in SEEN)
    np.testing.assert_allclose(sorted(SEEN), sorted(ours), rtol=1e-6)
    algo.stop()


def test_the_env_names_what_it_needs():
    with pytest.raises(ValueError, match="config must name the environment"):
        HmarlMultiAgentEnv({"layout": "ring"})
