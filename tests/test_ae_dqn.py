"""AE-DQN: the elimination bandit, elimination in acting and targets, learning speed."""

import json

import pytest
import torch

from hmarl.agents.ae_dqn import AEDQN, AEDQNConfig, LinearEliminationBandit
from hmarl.trainers import ae_dqn as ae_dqn_trainer
from hmarl.trainers import dqn as dqn_trainer


def test_bandit_eliminates_confidently_invalid_actions_only():
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(3000, 4, generator=generator)
    # Action 0 never works, action 1 always works, action 2 fails when feature 0 > 0.5;
    # action 3 was tried only twice, and failed both times.
    actions = torch.randint(3, (3000,), generator=generator)
    actions[:2] = 3
    invalid = (actions == 0) | ((actions == 2) & (features[:, 0] > 0.5)) | (actions == 3)
    bandit = LinearEliminationBandit(4, feature_dim=4, lam=0.1, threshold=0.6, beta=2.0, device=torch.device("cpu"))
    bandit.fit(features, actions, invalid)
    states = torch.tensor([[0.9, 0.5, 0.5, 0.5], [0.1, 0.5, 0.5, 0.5]])
    admissible = bandit.admissible(states)
    assert admissible.tolist() == [[False, True, False, True], [False, True, True, True]]


def test_bandit_never_eliminates_every_action():
    bandit = LinearEliminationBandit(2, feature_dim=1, lam=0.1, threshold=0.6, beta=0.0, device=torch.device("cpu"))
    bandit.fit(torch.ones(100, 1), torch.arange(100) % 2, torch.ones(100, dtype=torch.bool))
    assert bandit.admissible(torch.ones(3, 1)).sum(1).tolist() == [1, 1, 1]


def make_agent() -> AEDQN:
    torch.manual_seed(0)
    config = AEDQNConfig(batch_size=16, buffer_size=2048, hidden_sizes=(16,), elimination_hidden_sizes=(4,),
                         elimination_fit_every=1, elimination_beta=0.5)
    return AEDQN(config, obs_dim=3, n_actions=6, num_streams=4, total_steps=1000, total_updates=100)


def fill_with_invalid_extra_actions(agent: AEDQN, steps: int) -> None:
    """Actions 3..5 never work; the environment's mask is all ones (AE-DQN ignores it)."""
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        action = torch.randint(6, (4, 1), generator=generator)
        agent.store({
            "observation": torch.randn(4, 1, 3, generator=generator),
            "action_mask": torch.ones(4, 1, 6, dtype=torch.bool),
            "state": torch.zeros(4, 3),
            "action": action,
            "reward": torch.zeros(4, 1),
            "next_observation": torch.randn(4, 1, 3, generator=generator),
            "next_action_mask": torch.ones(4, 1, 6, dtype=torch.bool),
            "next_state": torch.zeros(4, 3),
            "terminated": torch.zeros(4, dtype=torch.bool),
            "truncated": torch.zeros(4, dtype=torch.bool),
            "invalid_action": action >= 3,
        })


def test_elimination_applies_to_greedy_exploration_and_targets():
    agent = make_agent()
    fill_with_invalid_extra_actions(agent, 500)
    for _ in range(30):
        metrics = agent.update()
    assert metrics["admissible_actions"] == pytest.approx(3.0, abs=0.05)
    obs = {
        "observation": torch.randn(500, 1, 3),
        "action_mask": torch.ones(500, 1, 6, dtype=torch.bool),
        "state": torch.zeros(500, 3),
    }
    explored = agent.act(obs, global_step=0)
    assert set(explored.unique().tolist()) >= {0, 1, 2}
    assert (explored >= 3).float().mean() < 0.01
    with torch.no_grad():
        agent.q_network.head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 100.0, 100.0, 100.0]))
        agent.target_network.head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 100.0, 100.0, 100.0]))
    assert (agent.act_greedy(obs) >= 3).float().mean() < 0.01
    batch = agent.replay.sample(256)
    # Without elimination the extra actions' value (about 100) would be bootstrapped.
    assert agent.td_target(batch).median() < 50.0


def test_outcome_counts_weigh_rare_valid_outcomes_up():
    agent = make_agent()
    fill_with_invalid_extra_actions(agent, 100)
    valid, invalid = agent.outcome_counts.T - 1
    assert (valid[:3] + invalid[:3]).sum() + invalid[3:].sum() == 400
    assert invalid[:3].sum() == 0 and valid[3:].sum() == 0
    restored = make_agent()
    restored.load_state_dict(agent.state_dict())
    assert torch.equal(restored.outcome_counts, agent.outcome_counts)


def trash_args(tmp_path, name: str, env_kwargs: dict, total_steps: int, target: float) -> list[str]:
    """The same hyperparameters for AE-DQN and DQN; neither sees the action mask."""
    return [
        "--env", "trash_collection_v0", "--env-kwargs", json.dumps(env_kwargs), "--total-steps", str(total_steps),
        "--num-envs", "16", "--eval-every", "2000", "--target-metric", "success", "--target-value", str(target),
        "--stop-at-target", "--lr", "1e-3", "--n-step", "3", "--updates-per-round", "1",
        "--exploration-fraction", "0.5", "--epsilon-end", "0.05", "--hidden-sizes", "128", "128",
        "--run-name", name, "--log-dir", str(tmp_path / "runs"), "--checkpoint-dir", str(tmp_path / "checkpoints"),
        "--no-progress", "--no-use-action-mask",
    ]


SMALL_TRASH = {"layout": "random", "n_agents": 1, "width": 3, "height": 3, "n_trash": 1, "n_dumps": 1,
               "wall_density": 0.0, "max_cycles": 20, "extra_actions": 100}


def test_ae_dqn_learns_to_eliminate_the_extra_actions_of_trash_collection(tmp_path):
    args = trash_args(tmp_path, "eliminate", SMALL_TRASH, total_steps=24_000, target=1.1)
    result = ae_dqn_trainer.main(args + ["--eval-every", "0"])
    # 107 actions, 100 of which never do anything: about 7 remain admissible.
    assert result.last_update["admissible_actions"] <= 10.0, result.last_update


@pytest.mark.slow
def test_ae_dqn_reaches_trash_success_in_half_the_steps_of_dqn(tmp_path):
    task = {**SMALL_TRASH, "width": 4, "height": 4, "max_cycles": 30}
    ae = ae_dqn_trainer.main(trash_args(tmp_path, "ae", task, 150_000, target=0.9))
    assert ae.steps_to_target is not None, ae.summary()
    # DQN gets twice AE-DQN's steps; AE-DQN is at least twice as fast if DQN needs all of them.
    dqn = dqn_trainer.main(trash_args(tmp_path, "dqn", task, 2 * ae.steps_to_target - 1, target=0.9))
    assert dqn.steps_to_target is None, dqn.summary()
