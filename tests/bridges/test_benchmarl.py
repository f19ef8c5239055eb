"""BenchMARL runs MAPPO on an hmarl task: two iterations, masks honoured, and the
episode returns BenchMARL computes equal ours."""

from __future__ import annotations

import numpy as np
import torch
from benchmarl.algorithms import MappoConfig
from benchmarl.experiment import Experiment, ExperimentConfig
from benchmarl.experiment.callback import Callback
from benchmarl.models import MlpConfig
from conftest import SPARSE_KWARGS, ReturnRecorder, parameters

from hmarl import envs
from hmarl.envs.bridges.benchmarl import HmarlTask


class Batches(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.batches = []

    def on_batch_collected(self, batch):
        self.batches.append(batch.clone())


def test_mappo_trains_on_basketball_with_masks_and_our_returns(tmp_path, monkeypatch):
    module = envs.get("basketball_defense_v1")
    recorders: list[ReturnRecorder] = []
    make = module.parallel_env

    def recorded_parallel_env(**kwargs):
        env = make(**kwargs)
        recorders.append(ReturnRecorder(env))
        return env

    monkeypatch.setattr(module, "parallel_env", recorded_parallel_env)
    config = ExperimentConfig.get_from_yaml()
    config.max_n_iters = 2
    config.on_policy_collected_frames_per_batch = 400
    config.on_policy_n_envs_per_worker = 1
    config.on_policy_n_minibatch_iters = 1
    config.on_policy_minibatch_size = 100
    config.evaluation = False
    config.render = False
    config.loggers = []
    config.create_json = False
    config.save_folder = str(tmp_path)
    config.checkpoint_at_end = False
    batches = Batches()
    experiment = Experiment(
        task=HmarlTask.BASKETBALL_DEFENSE_V1.get_task(SPARSE_KWARGS),
        algorithm_config=MappoConfig.get_from_yaml(),
        model_config=MlpConfig.get_from_yaml(),
        critic_model_config=MlpConfig.get_from_yaml(),
        seed=0,
        config=config,
        callbacks=[batches],
    )
    before = parameters(experiment.policy)
    experiment.run()
    assert len(batches.batches) == 2
    assert not np.allclose(before, parameters(experiment.policy)), "the loss did not move the policy"
    seen = []
    for batch in batches.batches:
        agents = batch["agents"]
        taken = agents["action_mask"].gather(-1, agents["action"].unsqueeze(-1))
        assert taken.all(), "BenchMARL sampled a masked action"
        done = batch["next", "agents", "done"].squeeze(-1)
        seen += batch["next", "agents", "episode_reward"][done].flatten().tolist()
    ours = [value for recorder in recorders for episode in recorder.returns for value in episode.values()]
    assert len(seen) >= 10 and any(value != 0 for value in seen)
    np.testing.assert_allclose(sorted(seen), sorted(ours), rtol=1e-6)
    assert torch.is_tensor(batches.batches[0]["agents", "observation"])
