"""DQN: masks in acting and targets, double-Q targets, and learning CartPole."""

import math

import pytest
import torch

from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.trainers import dqn as dqn_trainer


def small_dqn(**overrides) -> DQN:
    torch.manual_seed(0)
    config = DQNConfig(**{"batch_size": 4, "buffer_size": 64, "hidden_sizes": (16,), **overrides})
    return DQN(config, obs_dim=3, n_actions=5, num_streams=2, total_steps=1000, total_updates=100)


def observation_batch(num_envs: int, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "observation": torch.randn(num_envs, 1, 3),
        "action_mask": mask.expand(num_envs, 1, 5),
        "state": torch.zeros(num_envs, 3),
    }


def test_acting_never_picks_masked_actions():
    agent = small_dqn()
    mask = torch.tensor([False, True, False, True, False])
    obs = observation_batch(256, mask)
    explored = agent.act(obs, global_step=0)
    greedy = agent.act_greedy(obs)
    assert explored.shape == greedy.shape == (256, 1)
    assert set(explored.unique().tolist()) == {1, 3}
    assert set(greedy.unique().tolist()) <= {1, 3}


def test_epsilon_decays_linearly_to_its_end_value():
    agent = small_dqn(epsilon_start=1.0, epsilon_end=0.1, exploration_fraction=0.5)
    assert agent.epsilon(0) == 1.0
    assert agent.epsilon(250) == pytest.approx(0.55)
    assert agent.epsilon(500) == pytest.approx(0.1)
    assert agent.epsilon(10_000) == pytest.approx(0.1)


def test_double_q_target_uses_the_mask_and_the_online_argmax():
    agent = small_dqn()
    with torch.no_grad():
        for layer in (agent.q_network.head, agent.target_network.head):
            layer.weight.zero_()
        agent.q_network.head.bias.copy_(torch.tensor([9.0, 1.0, 2.0, 3.0, 0.0]))
        agent.target_network.head.bias.copy_(torch.tensor([50.0, 10.0, 20.0, 30.0, 40.0]))
    batch = {
        "next_observation": torch.randn(2, 3),
        "next_action_mask": torch.tensor([[True] * 5, [False, True, True, False, True]]),
        "reward": torch.tensor([1.0, 1.0]),
        "discount": torch.tensor([0.5, 0.5]),
        "terminated": torch.tensor([False, True]),
    }
    target = agent.td_target(batch)
    # Copy 0: the online argmax is action 0, valued by the target network at 50.
    # Copy 1: action 0 is masked, so the online argmax is 2; terminated, so no bootstrap.
    assert target.tolist() == [1.0 + 0.5 * 50.0, 1.0]
    batch["terminated"] = torch.tensor([False, False])
    assert agent.td_target(batch).tolist() == [26.0, 1.0 + 0.5 * 20.0]


def test_dueling_head_and_n_step_agent_update():
    agent = small_dqn(dueling=True, n_step=3)
    for step in range(6):
        agent.store(
            {
                "observation": torch.randn(2, 1, 3),
                "action_mask": torch.ones(2, 1, 5, dtype=torch.bool),
                "state": torch.zeros(2, 3),
                "action": torch.randint(5, (2, 1)),
                "reward": torch.ones(2, 1),
                "next_observation": torch.randn(2, 1, 3),
                "next_action_mask": torch.ones(2, 1, 5, dtype=torch.bool),
                "next_state": torch.zeros(2, 3),
                "terminated": torch.tensor([step == 4, False]),
                "truncated": torch.tensor([False, False]),
                "invalid_action": torch.zeros(2, 1, dtype=torch.bool),
            }
        )
    assert agent.can_update()
    metrics = agent.update()
    assert math.isfinite(metrics["loss"]) and agent.engine.updates == 1


def test_batch_larger_than_buffer_is_refused():
    with pytest.raises(ValueError, match="batch_size=128 is larger than buffer_size=64"):
        small_dqn(batch_size=128)


def cartpole_args(tmp_path, total_steps: int, target: float) -> list[str]:
    return [
        "--env",
        "CartPole-v1",
        "--total-steps",
        str(total_steps),
        "--eval-every",
        "2000",
        "--target-value",
        str(target),
        "--stop-at-target",
        "--seed",
        "1",
        "--log-dir",
        str(tmp_path / "runs"),
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        "--no-progress",
    ]


def test_dqn_learns_cartpole_quickly(tmp_path):
    result = dqn_trainer.main(cartpole_args(tmp_path, total_steps=12_000, target=150.0))
    assert result.steps_to_target is not None, result.summary()


@pytest.mark.slow
def test_dqn_solves_cartpole(tmp_path):
    result = dqn_trainer.main(cartpole_args(tmp_path, total_steps=100_000, target=475.0))
    assert result.steps_to_target is not None, result.summary()
    assert result.final_eval["return"] >= 475.0
