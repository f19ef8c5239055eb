"""SAC-N / LB-SAC: the ensemble, the targets, the losses, the update order, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hmarl.agents.sac_n import SACN, EnsembleCritic, SACNConfig
from hmarl.core import VectorizedLinear
from hmarl.data import OfflineDataset

OBS_DIM, ACTION_DIM = 3, 2
LOW, HIGH = (-2.0, -1.0), (2.0, 1.0)


def make_agent(**overrides: object) -> SACN:
    config = SACNConfig(**{"ensemble_size": 3, "hidden_sizes": (16, 16), "batch_size": 8, **overrides})
    torch.manual_seed(0)
    return SACN(config, OBS_DIM, LOW, HIGH, total_updates=100, seed=0)


def make_dataset(length: int = 64) -> OfflineDataset:
    rng = np.random.default_rng(0)
    terminals = np.zeros(length, dtype=bool)
    terminals[::10] = True
    return OfflineDataset(
        observations=rng.normal(size=(length, OBS_DIM)),
        actions=rng.uniform(-1, 1, size=(length, ACTION_DIM)),
        rewards=rng.normal(size=length),
        next_observations=rng.normal(size=(length, OBS_DIM)),
        terminals=terminals,
        timeouts=np.zeros(length, dtype=bool),
        metadata={"env_id": "none"},
    )


def member_forward(critic: EnsembleCritic, member: int, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Critic ``member`` as an ordinary MLP built from its slice of the stacked weights."""
    hidden = torch.cat([obs, action], -1)
    layers = [m for m in critic.modules() if isinstance(m, VectorizedLinear)]
    for depth, layer in enumerate(layers):
        hidden = F.linear(hidden, layer.weight[member].T, layer.bias[member, 0])
        if depth < len(layers) - 1:
            hidden = F.relu(hidden)
    return hidden.squeeze(-1)


def test_ensemble_forward_equals_separate_critics() -> None:
    agent = make_agent(ensemble_size=5)
    obs, action = torch.randn(7, OBS_DIM), torch.rand(7, ACTION_DIM)
    together = agent.critic(obs, action)
    assert together.shape == (5, 7)
    for member in range(5):
        torch.testing.assert_close(together[member], member_forward(agent.critic, member, obs, action))
    # Members start different: an ensemble of copies would not penalise disagreement.
    assert together.std(0).min() > 0


def test_target_is_the_minimum_over_target_members() -> None:
    agent = make_agent()
    batch = {
        "next_observation": torch.randn(6, OBS_DIM),
        "reward": torch.randn(6),
        "discount": torch.full((6,), 0.99),
        "terminated": torch.tensor([False, True, False, False, True, False]),
    }
    alpha = torch.tensor(0.3)
    torch.manual_seed(1)
    target = agent.critic_target(batch, alpha)
    torch.manual_seed(1)
    next_action, next_log_prob = agent.actor(batch["next_observation"])
    members = torch.stack([member_forward(agent.target_critic, m, batch["next_observation"], next_action) for m in range(3)])
    expected = batch["reward"] + 0.99 * (~batch["terminated"]) * (members.min(0).values - alpha * next_log_prob)
    torch.testing.assert_close(target, expected)
    torch.testing.assert_close(target[batch["terminated"]], batch["reward"][batch["terminated"]])


def test_temperature_loss_and_its_direction() -> None:
    agent = make_agent(initial_alpha=0.5)
    batch = {"observation": torch.randn(32, OBS_DIM)}
    torch.manual_seed(2)
    loss, _extras = agent.temperature_loss(batch)
    torch.manual_seed(2)
    _, log_prob = agent.actor(batch["observation"])
    expected = -(math.log(0.5) * (log_prob + agent.target_entropy)).mean()
    torch.testing.assert_close(loss, expected)
    assert agent.target_entropy == -ACTION_DIM
    # Entropy below the target (here: asking for a very high one) must raise alpha.
    agent.target_entropy = 100.0
    before = agent.temperature.alpha.item()
    agent.temperature_engine.update(agent.temperature_loss, batch)
    assert agent.temperature.alpha.item() > before


def test_actor_loss_uses_the_minimum_and_leaves_critic_gradients_alone() -> None:
    agent = make_agent()
    batch = {"observation": torch.randn(16, OBS_DIM)}
    torch.manual_seed(3)
    loss, _ = agent.actor_loss(batch)
    torch.manual_seed(3)
    action, log_prob = agent.actor(batch["observation"])
    q_min = agent.critic(batch["observation"], action).min(0).values
    torch.testing.assert_close(loss, (agent.temperature.alpha * log_prob - q_min).mean())
    loss.backward()
    assert all(p.grad is None for p in agent.critic.parameters())
    assert all(p.grad is not None for p in agent.actor.parameters())


def test_update_order_is_temperature_actor_critic_then_polyak() -> None:
    agent = make_agent()
    agent.load_dataset(make_dataset())
    calls: list[str] = []
    for name in ("temperature_engine", "actor_engine", "critic_engine"):
        engine = getattr(agent, name)
        original = engine.update

        def recorded(loss_fn, batch, original=original, name=name):
            calls.append(name)
            return original(loss_fn, batch)

        engine.update = recorded
    target_before = [p.clone() for p in agent.target_critic.parameters()]
    critic_before = [p.clone() for p in agent.critic.parameters()]
    metrics = agent.update()
    assert calls == ["temperature_engine", "actor_engine", "critic_engine"]
    tau = agent.config.tau
    for target, old_target, old_online, online in zip(
        agent.target_critic.parameters(), target_before, critic_before, agent.critic.parameters(), strict=True
    ):
        assert not torch.equal(online, old_online)
        torch.testing.assert_close(target, (1 - tau) * old_target + tau * online)
    for key in ("alpha", "alpha_loss", "actor_loss", "critic_loss", "actor_q_ensemble_std", "critic_lr"):
        assert key in metrics
    assert "diversity_loss" not in {k.removeprefix("critic_") for k in metrics}


def test_edac_diversity_term_is_off_by_default_and_correct_when_on() -> None:
    assert SACNConfig().eta == 0.0
    agent = make_agent(eta=1.0, ensemble_size=2)
    obs = torch.randn(5, OBS_DIM).expand(2, -1, -1)
    action = torch.rand(5, ACTION_DIM).expand(2, -1, -1).clone().requires_grad_(True)
    q_values = agent.critic(obs, action)
    diversity = agent.diversity_loss(q_values, action)
    grads = [
        torch.autograd.grad(member_forward(agent.critic, m, obs[m], action[m]).sum(), action, retain_graph=True)[0][m]
        for m in range(2)
    ]
    cosine = F.cosine_similarity(grads[0], grads[1], dim=-1)
    # Two members: the two off-diagonal entries are the same cosine, divided by N - 1 = 1.
    torch.testing.assert_close(diversity, (2 * cosine).mean(), rtol=1e-4, atol=1e-5)
    agent.load_dataset(make_dataset())
    assert "critic_diversity_loss" in agent.update()


def test_lb_sac_uses_the_sqrt_rule_for_every_learning_rate() -> None:
    config = SACNConfig.lb_sac(ensemble_size=2, hidden_sizes=(8,))
    assert (config.batch_size, config.lr_scaling, config.base_batch_size, config.lr) == (10_000, "sqrt", 256, 3e-4)
    agent = SACN(config, OBS_DIM, LOW, HIGH, total_updates=10)
    expected = 3e-4 * math.sqrt(10_000 / 256)
    assert expected == pytest.approx(0.001875)
    for engine in (agent.temperature_engine, agent.actor_engine, agent.critic_engine):
        assert engine.optimizer.param_groups[0]["lr"] == pytest.approx(expected)


def test_actions_stay_in_the_box_and_greedy_is_deterministic() -> None:
    agent = make_agent(random_steps=10)
    obs = {"observation": torch.randn(50, 1, OBS_DIM) * 100}
    low, high = torch.tensor(LOW), torch.tensor(HIGH)
    for actions in (agent.act(obs, 0), agent.act(obs, 10), agent.act_greedy(obs)):
        assert actions.shape == (50, 1, ACTION_DIM)
        assert ((actions >= low) & (actions <= high)).all()
    torch.testing.assert_close(agent.act_greedy(obs), agent.act_greedy(obs))


def test_offline_checkpoint_resumes_exactly() -> None:
    dataset = make_dataset()
    straight = make_agent()
    straight.load_dataset(dataset)
    for _ in range(6):
        straight.update()

    first = make_agent()
    first.load_dataset(dataset)
    for _ in range(3):
        first.update()
    state, rng = first.state_dict(), torch.get_rng_state()
    assert state["replay"]["storage"] == {}
    resumed = make_agent()
    resumed.load_dataset(dataset)
    resumed.load_state_dict(state)
    torch.set_rng_state(rng)
    for _ in range(3):
        resumed.update()
    expected = straight.critic_engine.state_dict()["modules"]
    for name, tensor in resumed.critic_engine.state_dict()["modules"].items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0)
    torch.testing.assert_close(straight.temperature.log_alpha, resumed.temperature.log_alpha, rtol=0, atol=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ensemble_size": 0}, "ensemble_size must be >= 1"),
        ({"eta": -1.0}, "eta must be >= 0"),
        ({"eta": 1.0, "ensemble_size": 1}, "eta > 0 needs ensemble_size >= 2"),
        ({"initial_alpha": 0.0}, "initial_alpha must be > 0"),
        ({"lr_scaling": "cubic"}, r"lr_scaling='cubic' is not valid; choose one of \['none', 'sqrt', 'linear'\]"),
    ],
)
def test_bad_configuration_is_named(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_agent(**overrides)


def test_dataset_must_match_the_agent() -> None:
    agent = make_agent(batch_size=1000)
    with pytest.raises(ValueError, match="batch_size=1000 is larger than the dataset"):
        agent.load_dataset(make_dataset())
    other = OfflineDataset(**{**make_dataset().arrays(), "actions": np.zeros((64, 5))})
    with pytest.raises(ValueError, match="action_dim=5 but the agent was built for"):
        make_agent().load_dataset(other)


def test_continuous_gym_env_rejects_actions_outside_the_box() -> None:
    from hmarl.training import make_vector_env

    env = make_vector_env("Pendulum-v1", 2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions must lie in the action box"):
        env.step(np.full((2, 1, 1), 3.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 1, 1\)"):
        env.step(np.zeros((2, 1)))
