"""Flat QMIX: its mixed TD target on a hand-built batch, bad input, and a short learning run."""

import pytest
import torch
from torch import nn

from hmarl.agents.qmix import QMIX, QMIXConfig
from hmarl.trainers import qmix as qmix_trainer

# Each agent stands beside its trash with a dump three cells away: left, pick, right,
# right, place. Uniformly random allowed actions score 0.04 on average in 12 steps.
NEAR = "name: near\nmax_cycles: 12\nreward: place\nTA.D\n....\nTA.D\n"


class FixedValues(nn.Module):
    def __init__(self, values):
        super().__init__()
        self.values = values
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, obs):
        return self.values.expand(obs.shape[0], -1, -1) * self.scale


class SumMixer(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, agent_q, state):
        return agent_q.sum(-1) * self.scale


def test_the_mixed_target_bootstraps_each_agents_best_allowed_action():
    agent = QMIX(
        QMIXConfig(batch_size=2, buffer_size=8),
        obs_dim=3,
        state_dim=2,
        n_agents=2,
        n_actions=3,
        num_envs=1,
        total_steps=10,
        total_updates=10,
    )
    online = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]]])
    target = torch.tensor([[[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]]])
    agent.agents = FixedValues(online)
    agent.engine.targets["agents"] = FixedValues(target)
    agent.mixer, agent.engine.targets["mixer"] = SumMixer(), SumMixer()
    batch = {
        "observation": torch.zeros(1, 2, 3),
        "state": torch.zeros(1, 2),
        "action": torch.tensor([[0, 1]]),
        "reward": torch.tensor([1.0]),
        "next_observation": torch.zeros(1, 2, 3),
        "next_state": torch.zeros(1, 2),
        # Agent 0 may not take its best action (2): online picks 1, the target values it 20.
        "next_action_mask": torch.tensor([[[True, True, False], [True, True, True]]]),
        "terminated": torch.tensor([False]),
        "discount": torch.tensor([0.5]),
    }
    rows, _ = agent.loss(batch)
    # Q_tot = 1 + 5 = 6; target 1 + 0.5 * (20 + 50) = 36; Huber(30) = 29.5.
    assert rows.values.item() == pytest.approx(29.5)
    assert rows.scores.item() == pytest.approx(30.0)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="team_reward"):
        QMIX(QMIXConfig(team_reward="max"), 3, 2, 2, 3, 1, 10, 10)
    with pytest.raises(ValueError, match="discrete action space"):
        QMIX(QMIXConfig(), 3, 2, 2, 0, 1, 10, 10)


def test_qmix_learns_the_near_layout(tmp_path):
    layout = tmp_path / "near.txt"
    layout.write_text(NEAR)
    result = qmix_trainer.main(
        [
            "--env-kwargs",
            f'{{"layout": "{layout}"}}',
            "--total-steps",
            "20000",
            "--num-envs",
            "16",
            "--learning-starts",
            "1000",
            "--eval-every",
            "5000",
            "--eval-episodes",
            "20",
            "--batch-size",
            "128",
            "--hidden-sizes",
            "64",
            "64",
            "--exploration-fraction",
            "0.5",
            "--lr",
            "2.5e-4",
            "--lr-scaling",
            "none",
            "--no-progress",
            "--log-dir",
            str(tmp_path / "runs"),
            "--checkpoint-dir",
            str(tmp_path / "ck"),
        ]
    )
    best = max(metrics["return"] for _, metrics in result.evaluations)
    assert best >= 0.5, f"greedy reward sum {best} (optimum 1.0, random allowed actions 0.04)"
