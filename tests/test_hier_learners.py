"""The hierarchical learners' parts: SMDP targets, QMIX monotonicity, communication,
the low level, replay of variable row counts, acting on a real environment."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from hmarl.core import Field, ReplayBuffer
from hmarl.envs import basketball_defense_v1, trash_collection_v0
from hmarl.hier import HierarchicalAgent, HierConfig, HierSpec, QmixOptions
from hmarl.nets import CommGoalQ, EgocentricView, GoalConditionedQ, IndependentGoalQ, QMixer
from hmarl.training.loop import make_transition, to_tensors

SPEC = HierSpec(
    num_envs=2,
    n_agents=2,
    obs_dim=3,
    state_dim=4,
    n_actions=7,
    n_goals=3,
    goal_dim=2,
    low_actions=(0, 1, 2, 3, 4),
    navigation_goals=(0, 1),
)


class FixedQ(nn.Module):
    """Returns preset values whatever the input (the parameter keeps the engine happy)."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.values = values
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.values * self.scale


def _agent(**overrides) -> HierarchicalAgent:
    qmix = QmixOptions(**{name: overrides.pop(name) for name in ("team_reward", "mixer_embed") if name in overrides})
    config = HierConfig(batch_size=4, high_buffer_size=16, low_buffer_size=16, qmix=qmix, **overrides)
    return HierarchicalAgent(config, SPEC, option_len=5, total_updates=10)


def test_smdp_targets_bootstrap_free_and_continuing_agents():
    agent = _agent(gamma=0.5, double_q=True)
    online = torch.tensor([[[9.0, 1.0, 5.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]])
    target = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[7.0, 8.0, 9.0], [10.0, 11.0, 12.0]]])
    agent.high_engine.modules["agents"] = FixedQ(online)
    agent.high_engine.targets["agents"] = FixedQ(target)
    batch = {
        "next_obs": torch.zeros(2, 2, 3),
        "goal": torch.tensor([[0, 1], [2, 0]]),
        # Row 0: agent 0 picks anew among goals {1, 2} (online prefers 2), agent 1 continues goal 1.
        # Row 1: both pick anew; agent 0 may only take goal 0, agent 1 everything.
        "next_free": torch.tensor([[True, False], [True, True]]),
        "next_goal_mask": torch.tensor(
            [[[False, True, True], [True, True, True]], [[True, False, False], [True, True, True]]]
        ),
        "duration": torch.tensor([3, 1]),
        "terminated": torch.tensor([False, True]),
    }
    value, discount = agent.high.smdp_targets(batch)
    np.testing.assert_allclose(value.numpy(), [[3.0, 5.0], [7.0, 10.0]])
    np.testing.assert_allclose(discount.numpy(), [0.125, 0.0])


def test_n_step_targets_continue_the_goals_held_where_the_row_ends():
    agent = _agent(gamma=0.5, high_n_step=3)
    agent.high_engine.modules["agents"] = FixedQ(torch.zeros(1, 2, 3))
    agent.high_engine.targets["agents"] = FixedQ(torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]))
    batch = {
        "next_obs": torch.zeros(1, 2, 3),
        "goal": torch.tensor([[0, 0]]),
        "next_goal": torch.tensor([[2, 1]]),
        "next_free": torch.tensor([[False, False]]),
        "next_goal_mask": torch.ones(1, 2, 3, dtype=torch.bool),
        "duration": torch.tensor([3]),
        "terminated": torch.tensor([False]),
    }
    value, discount = agent.high.smdp_targets(batch)
    np.testing.assert_allclose(value.numpy(), [[3.0, 5.0]])
    np.testing.assert_allclose(discount.numpy(), [0.125])
    assert "next_goal" in agent.high_replay.fields
    with pytest.raises(ValueError, match="high_n_step"):
        _agent(high_n_step=0)
    with pytest.raises(ValueError, match="acer_concurrent"):
        _agent(high_n_step=2, acer_concurrent=False)


def _one_row_high_loss(agent: HierarchicalAgent, acting: list[bool], **fields) -> torch.Tensor:
    """The high-level loss on one row of two agents, goals 0 and 1 valued 1 and 2, next
    values 4 (target network), rewards 1 and 0.5 over 2 steps, both agents free next."""
    agent.high_engine.modules["agents"] = FixedQ(torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]]))
    agent.high_engine.targets["agents"] = FixedQ(torch.full((1, 2, 3), 4.0))
    batch = {
        "obs": torch.zeros(1, 2, 3),
        "state": torch.zeros(1, 4),
        "next_obs": torch.zeros(1, 2, 3),
        "next_state": torch.zeros(1, 4),
        "goal": torch.tensor([[0, 1]]),
        "reward": torch.tensor([[1.0, 0.5]]),
        "duration": torch.tensor([2]),
        "next_free": torch.tensor([[True, True]]),
        "next_goal_mask": torch.ones(1, 2, 3, dtype=torch.bool),
        "terminated": torch.tensor([False]),
        "acting": torch.tensor([acting]),
        **fields,
    }
    rows, _ = agent.high_loss(batch)
    return rows.reduce(None)


def test_high_loss_uses_reward_plus_discounted_value_on_acting_agents():
    loss = _one_row_high_loss(_agent(gamma=0.5), acting=[True, False])
    # Agent 0: target 1 + 0.25 * 4 = 2, Q = 1: Huber(1) = 0.5; agent 1 does not act.
    assert loss.item() == pytest.approx(0.5)


class SumMixer(nn.Module):
    """Q_tot as the plain sum of the agents' values."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, agent_q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return agent_q.sum(-1) * self.scale


@pytest.mark.parametrize(("team_reward", "expected"), [("sum", 0.125), ("mean", 0.03125)])
def test_qmix_loss_regresses_the_mixed_value_on_the_team_reward(team_reward, expected):
    agent = _agent(gamma=0.5, high_level="qmix", team_reward=team_reward)
    agent.high_engine.modules["mixer"] = SumMixer()
    agent.high_engine.targets["mixer"] = SumMixer()
    loss = _one_row_high_loss(agent, acting=[True, True])
    # Q_tot = 1 + 2 = 3; bootstrap 0.25 * (4 + 4) = 2; team reward 1.5 (sum) or 0.75 (mean):
    # errors 0.5 and 0.25, Huber 0.125 and 0.03125.
    assert loss.item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="team_reward"):
        _agent(high_level="qmix", team_reward="max")


def test_return_regularizer_pulls_values_towards_the_returns_that_followed():
    returns = {"episode_return": torch.tensor([[3.0, 0.0]])}
    independent = _one_row_high_loss(_agent(gamma=0.5, return_regularizer=0.1), [True, False], **returns)
    # Agent 0: Huber 0.5 as above, plus 0.1 * (1 - 3)**2.
    assert independent.item() == pytest.approx(0.5 + 0.4)
    agent = _agent(gamma=0.5, high_level="qmix", team_reward="mean", return_regularizer=0.1)
    agent.high_engine.modules["mixer"] = SumMixer()
    agent.high_engine.targets["mixer"] = SumMixer()
    # Q_tot = 3 against the team's (mean) return 1.5: 0.03125 + 0.1 * 1.5**2.
    assert _one_row_high_loss(agent, [True, True], **returns).item() == pytest.approx(0.03125 + 0.225)
    with pytest.raises(ValueError, match="return_regularizer"):
        _agent(return_regularizer=-1.0)


def test_qmix_is_monotonic_in_every_agent_value():
    torch.manual_seed(0)
    mixer = QMixer(n_agents=3, state_dim=5, embed_dim=8)
    agent_q = torch.randn(64, 3, requires_grad=True)
    total = mixer(agent_q, torch.randn(64, 5))
    (gradient,) = torch.autograd.grad(total.sum(), agent_q)
    assert (gradient >= 0).all()
    raised = agent_q.detach().clone()
    raised[:, 1] += 1.0
    assert (mixer(raised, torch.randn(64, 5) * 0 + 1) >= mixer(agent_q.detach(), torch.ones(64, 5)) - 1e-6).all()


def test_comm_lets_each_agent_see_the_others_for_any_number_of_agents():
    torch.manual_seed(0)
    for n_agents in (1, 3, 4):
        comm = CommGoalQ(obs_dim=5, n_agents=n_agents, n_goals=2, hidden_sizes=(8,))
        independent = IndependentGoalQ(obs_dim=5, n_agents=n_agents, n_goals=2, hidden_sizes=(8,))
        obs = torch.randn(7, n_agents, 5)
        changed = obs.clone()
        changed[:, -1] += 1.0
        assert comm(obs).shape == (7, n_agents, 2)
        if n_agents > 1:
            assert not torch.allclose(comm(obs)[:, 0], comm(changed)[:, 0]), "agent 0 hears the last agent"
            assert torch.allclose(independent(obs)[:, 0], independent(changed)[:, 0])


def test_high_level_per_agent_networks_are_separate_members():
    torch.manual_seed(0)
    per_agent = IndependentGoalQ(obs_dim=5, n_agents=3, n_goals=4, hidden_sizes=(8,), shared=False)
    obs = torch.randn(2, 6, 3, 5)
    values = per_agent(obs)
    assert values.shape == (2, 6, 3, 4)
    changed = obs.clone()
    changed[..., 1, :] += 1.0
    moved = (per_agent(changed) - values).abs().sum((0, 1, 3))
    assert moved[1] > 0 and moved[0] == 0 and moved[2] == 0, "agent 1's values read agent 1's observation only"
    # each agent has its own weights: the same observation in another seat gets other values
    same = obs[..., :1, :].expand(2, 6, 3, 5)
    seats = per_agent(same)
    shared = IndependentGoalQ(obs_dim=5, n_agents=3, n_goals=4, hidden_sizes=(8,))
    assert not torch.allclose(seats[..., 0, :], seats[..., 1, :])
    assert sum(p.numel() for p in per_agent.parameters()) > 2.5 * sum(p.numel() for p in shared.parameters())
    agent = _agent(high_level="qmix", high_shared=False)
    assert not agent.high_engine.modules["agents"].shared
    with pytest.raises(ValueError, match="high_shared"):
        _agent(high_level="comm", high_shared=False)


def test_low_level_per_agent_networks_differ_and_shared_one_takes_the_id():
    torch.manual_seed(0)
    obs, goal = torch.randn(4, 3), torch.randn(4, 2)
    agent = torch.tensor([0, 1, 0, 1])
    per_agent = GoalConditionedQ(3, 2, 2, 5, (8,), shared=False)
    q = per_agent(obs, goal, agent)
    assert q.shape == (4, 5)
    members = per_agent.body(torch.cat([obs, goal, nn.functional.one_hot(agent, 2).float()], -1))
    torch.testing.assert_close(q[0], members[0, 0, :5])
    torch.testing.assert_close(q[1], members[1, 1, :5])


def _grid_row(height, width, agent, walls, goal):
    """A one-agent observation (self, walls channels, then a carrying flag) and a goal
    (its cell map, then a kind flag) for a ``height x width`` grid."""
    obs, goal_row = np.zeros((2, height, width), np.float32), np.zeros((height, width), np.float32)
    obs[0][agent] = 1.0
    for cell in walls:
        obs[1][cell] = 1.0
    goal_row[goal] = 1.0
    return (
        torch.as_tensor(np.append(obs.ravel(), 1.0), dtype=torch.float32)[None],
        torch.as_tensor(np.append(goal_row.ravel(), [0.0, 1.0]), dtype=torch.float32)[None],
    )


def test_egocentric_view_centres_the_agent_and_marks_the_grid_edge():
    view = EgocentricView(2 * 3 * 4 + 1, 3 * 4 + 2, (2, 3, 4), (1, 3, 4))
    assert view.out_dim == 3 * 5 * 7 + 1 + 2
    obs, goal = _grid_row(3, 4, agent=(1, 1), walls=[(1, 2)], goal=(2, 3))
    out = view(obs, goal)[0]
    window = out[: 3 * 5 * 7].reshape(5, 7, 3)  # rows, columns, (walls, goal, on grid)
    assert window[2, 4, 0] == 1 and window[:, :, 0].sum() == 1, "the wall one column right of the agent"
    assert window[3, 5, 1] == 1 and window[:, :, 1].sum() == 1, "the goal one row up and two columns right"
    assert window[:, :, 2].sum() == 12 and window[1:4, 2:6, 2].all(), "the 3x4 grid around the agent"
    torch.testing.assert_close(out[-3:], torch.tensor([1.0, 0.0, 1.0], dtype=out.dtype))
    # The same scene shifted by a cell reads the same; only the grid's edge moves.
    for dy, dx in ((0, -1), (-1, 0)):
        moved = _grid_row(3, 4, agent=(1 + dy, 1 + dx), walls=[(1 + dy, 2 + dx)], goal=(2 + dy, 3 + dx))
        moved_window = view(*moved)[0][: 3 * 5 * 7].reshape(5, 7, 3)
        torch.testing.assert_close(moved_window[:, :, :2], window[:, :, :2])
        assert not torch.equal(moved_window[:, :, 2], window[:, :, 2])
    with pytest.raises(ValueError, match="goal_grid"):
        EgocentricView(25, 14, (2, 3, 4), (1, 4, 3))


def test_egocentric_low_level_needs_grids():
    env = trash_collection_v0.vector_env(num_envs=2, layout="random", n_agents=3, width=7, height=7)
    agent = HierarchicalAgent(HierConfig(low_view="egocentric"), HierSpec.of(env), option_len=5, total_updates=10)
    assert agent.low_net.view is not None and agent.low_net.view.out_dim == 6 * 13 * 13 + 1 + 4
    court = basketball_defense_v1.vector_env(num_envs=2, n_players=3)
    with pytest.raises(ValueError, match="low_view='egocentric'"):
        HierarchicalAgent(HierConfig(low_view="egocentric"), HierSpec.of(court), option_len=5, total_updates=10)
    with pytest.raises(ValueError, match="low_view"):
        _agent(low_view="aerial")


def test_replay_extend_adds_variable_counts_and_wraps():
    replay = ReplayBuffer({"x": Field((2,)), "k": Field((), torch.long)}, capacity=5, num_streams=1)
    replay.extend({"x": torch.zeros(0, 2), "k": torch.zeros(0, dtype=torch.long)})
    assert len(replay) == 0
    replay.extend({"x": np.ones((3, 2), np.float32), "k": np.arange(3)})
    replay.extend({"x": np.ones((4, 2), np.float32), "k": np.arange(3, 7)})
    assert len(replay) == 5
    assert sorted(replay.storage["k"].tolist()) == [2, 3, 4, 5, 6]
    replay.extend({"x": np.ones((7, 2), np.float32), "k": np.arange(10, 17)})
    assert sorted(replay.storage["k"].tolist()) == [12, 13, 14, 15, 16]
    assert set(replay.sample(5)["k"].tolist()) <= set(range(12, 17))
    with pytest.raises(ValueError, match="same number"):
        replay.extend({"x": np.ones((2, 2), np.float32), "k": np.arange(3)})
    with pytest.raises(ValueError, match="num_streams=1"):
        ReplayBuffer({"x": Field(())}, capacity=4, num_streams=2).extend({"x": torch.zeros(1)})


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="high_level"):
        _agent(high_level="telepathy")
    with pytest.raises(ValueError, match="low_buffer_size"):
        HierarchicalAgent(HierConfig(batch_size=32, low_buffer_size=16), SPEC, 5, 10)
    with pytest.raises(ValueError, match="low_updates"):
        _agent(low_updates=0)
    with pytest.raises(RuntimeError, match="attach_env"):
        _agent().act({"observation": torch.zeros(2, 2, 3)}, 0)


@pytest.mark.parametrize(
    ("high_level", "variant"),
    [
        ("independent", {}),
        ("comm", {}),
        ("qmix", {}),
        ("random", {}),
        ("qmix", {"termination": "sync", "acer_concurrent": False, "acer_augmented": False}),
        ("qmix", {"return_regularizer": 0.1}),
        ("independent", {"elimination": True, "low_shared": False, "low_relabel": False, "compact_replay": False}),
    ],
)
def test_acting_storing_and_updating_on_trash_collection(high_level, variant):
    # Episodes of 10 steps: with the return regulariser, rows enter replay when their episode ends.
    env = trash_collection_v0.vector_env(num_envs=3, layout="room", max_cycles=10)
    spec = HierSpec.of(env)
    assert spec.low_actions == (0, 1, 2, 3, 4), "pick and place are issued by one-step goals"
    config = HierConfig(
        high_level=high_level, batch_size=16, high_buffer_size=256, low_buffer_size=256, high_level_starts=0, **variant
    )
    agent = HierarchicalAgent(config, spec, option_len=4, total_updates=10)
    agent.attach_env(env, evaluation=False)
    obs, _ = env.reset(seed=0)
    for step in range(12):
        actions = agent.act(to_tensors(obs, "cpu"), step * 3).numpy()
        assert actions.shape == (3, 2) and ((actions >= 0) & (actions < env.n_actions)).all()
        next_obs, rewards, terminated, truncated, infos = env.step(actions)
        agent.store(make_transition(obs, actions, rewards, next_obs, terminated, truncated, infos, "cpu"))
        obs = next_obs
    assert agent.can_update()
    metrics = agent.update()
    assert np.isfinite(metrics["low_loss"])
    assert ("high_loss" in metrics) == (high_level != "random")
    assert ("low_elimination_loss" in metrics) == variant.get("elimination", False)
    eval_env = trash_collection_v0.vector_env(num_envs=2, layout="room")
    eval_obs, _ = eval_env.reset(seed=1)
    agent.attach_env(eval_env, evaluation=True)
    first = agent.act_greedy(to_tensors(eval_obs, "cpu"))
    agent.attach_env(eval_env, evaluation=True)
    assert torch.equal(first, agent.act_greedy(to_tensors(eval_obs, "cpu"))), "greedy acting is reproducible"


def test_low_level_stops_learning_for_good_once_it_reaches_enough_goals():
    env = trash_collection_v0.vector_env(num_envs=3, layout="room")
    config = HierConfig(batch_size=16, high_buffer_size=256, low_buffer_size=256, high_level_starts=0, low_freeze_success=0.8)
    agent = HierarchicalAgent(config, HierSpec.of(env), option_len=4, total_updates=10)
    agent.attach_env(env, evaluation=False)
    obs, _ = env.reset(seed=0)
    for step in range(12):
        actions = agent.act(to_tensors(obs, "cpu"), step * 3).numpy()
        next_obs, rewards, terminated, truncated, infos = env.step(actions)
        agent.store(make_transition(obs, actions, rewards, next_obs, terminated, truncated, infos, "cpu"))
        obs = next_obs
    # 79% of 1,000 recent options reached their goal: the low level keeps learning.
    agent.option_stats = np.array([1000.0, 4000.0, 790.0])
    assert agent.update()["low_frozen"] == 0.0 and agent.low_engine.updates == config.low_updates
    # 80%: frozen, here and after a checkpoint, however the success falls later.
    agent.option_stats = np.array([1000.0, 4000.0, 800.0])
    low = {name: p.clone() for name, p in agent.low_net.state_dict().items()}
    metrics = agent.update()
    assert metrics["low_frozen"] == 1.0 and "low_loss" not in metrics and np.isfinite(metrics["high_loss"])
    assert agent.low_engine.updates == config.low_updates and agent.low_frozen_at == agent.global_step
    rows = len(agent.low_replay)
    actions = agent.act(to_tensors(obs, "cpu"), 40).numpy()
    next_obs, rewards, terminated, truncated, infos = env.step(actions)
    agent.store(make_transition(obs, actions, rewards, next_obs, terminated, truncated, infos, "cpu"))
    assert len(agent.low_replay) == rows, "a frozen low level stores no more rows"
    restored = HierarchicalAgent(config, HierSpec.of(env), option_len=4, total_updates=10)
    restored.load_state_dict(agent.state_dict())
    restored.option_stats = np.array([1000.0, 4000.0, 100.0])
    assert restored.update()["low_frozen"] == 1.0 and restored.low_engine.updates == config.low_updates
    for name, tensor in restored.low_net.state_dict().items():
        torch.testing.assert_close(tensor, low[name], rtol=0, atol=0)
    # Too few options say nothing yet; 0 never freezes; the threshold is a fraction.
    fresh = HierarchicalAgent(config, HierSpec.of(env), option_len=4, total_updates=10)
    fresh.option_stats = np.array([50.0, 200.0, 50.0])
    fresh._freeze_low_level()
    assert fresh.low_frozen_at is None
    never = HierarchicalAgent(dataclasses.replace(config, low_freeze_success=0.0), HierSpec.of(env), 4, 10)
    never.option_stats = np.array([1000.0, 4000.0, 1000.0])
    never._freeze_low_level()
    assert never.low_frozen_at is None
    with pytest.raises(ValueError, match="low_freeze_success"):
        HierarchicalAgent(dataclasses.replace(config, low_freeze_success=1.5), HierSpec.of(env), 4, 10)


@pytest.mark.parametrize("interrupt", [False, True])
def test_interruption_gives_a_decision_whenever_a_one_step_goal_is_feasible(interrupt):
    """Basketball's steal and block are feasible for a few steps at a time: with
    interruption every navigating agent that could take one decides again, in training
    and in greedy evaluation alike; without it, agents keep their navigation option."""
    env = basketball_defense_v1.vector_env(num_envs=8, n_players=3)
    spec = HierSpec.of(env)
    config = HierConfig(batch_size=16, high_buffer_size=256, low_buffer_size=256, interrupt=interrupt)
    agent = HierarchicalAgent(config, spec, option_len=30, total_updates=10)
    one_step = list(agent.one_step_goals)
    assert [env.goal_names[g] for g in one_step] == ["steal", "block"]
    for evaluation in (False, True):
        agent.attach_env(env, evaluation=evaluation)
        obs, _ = env.reset(seed=3)
        chances = kept = 0
        chance = None
        for step in range(300):
            if evaluation:
                actions = agent.act_greedy(to_tensors(obs, "cpu")).numpy()
                if chance is not None:  # evaluation ends options lazily, here
                    kept += int((chance & (agent.eval_options.elapsed > 0)).sum())
                goals = agent.eval_options.goals.copy()
            else:
                actions = agent.act(to_tensors(obs, "cpu"), step).numpy()
                goals = agent.options.goals.copy()
            next_obs, rewards, terminated, truncated, infos = env.step(actions)
            if not evaluation:
                agent.store(make_transition(obs, actions, rewards, next_obs, terminated, truncated, infos, "cpu"))
            obs = next_obs
            navigating = ~np.isin(goals, one_step) & ~(terminated | truncated)[:, None]
            chance = navigating & env.goal_mask()[..., one_step].any(-1)
            chances += int(chance.sum())
            if not evaluation:
                kept += int((chance & ~agent.options.deciding()).sum())
        assert chances > 0, "the test never met a feasible steal or block"
        assert (kept == 0) == interrupt, (evaluation, chances, kept)


@pytest.mark.parametrize("hold", [False, True])
def test_held_goals_outlast_their_reach_in_training_and_evaluation(hold):
    """With ``hold_goals`` a defender who reaches his guard spot keeps guarding (his
    option goes on, until its timeout); without it, reaching ends the option."""
    torch.manual_seed(0)  # the greedy phase walks wherever the untrained low level's values say
    env = basketball_defense_v1.vector_env(num_envs=8, n_players=3)
    config = HierConfig(batch_size=16, high_buffer_size=256, low_buffer_size=256, hold_goals=hold)
    agent = HierarchicalAgent(config, HierSpec.of(env), option_len=30, total_updates=10)
    navigation = [g for g in range(len(env.goal_names)) if g not in agent.one_step_goals]
    for evaluation in (False, True):
        agent.attach_env(env, evaluation=evaluation)
        obs, _ = env.reset(seed=5)
        reached_total = kept = 0
        reached = np.zeros((env.num_envs, env.n_agents), dtype=bool)
        longest = 0
        for step in range(200):
            if evaluation:
                actions = agent.act_greedy(to_tensors(obs, "cpu")).numpy()
                options = agent.eval_options
                if step:  # evaluation ends options lazily: those reached last step went on
                    kept += int((reached & (options.elapsed > 0)).sum())
            else:
                actions = agent.act(to_tensors(obs, "cpu"), step).numpy()
                options = agent.options
            goals = options.goals.copy()
            next_obs, rewards, terminated, truncated, infos = env.step(actions)
            if not evaluation:
                agent.store(make_transition(obs, actions, rewards, next_obs, terminated, truncated, infos, "cpu"))
            obs = next_obs
            live = ~(terminated | truncated)[:, None]
            reached = np.isin(goals, navigation) & live & env.goal_reached(goals)
            reached_total += int(reached.sum())
            if not evaluation:
                kept += int((reached & ~options.deciding()).sum())
            longest = max(longest, int(options.elapsed.max()))
        assert reached_total > 0, "no defender ever reached his goal"
        assert (kept > 0) == hold, (evaluation, reached_total, kept)
        assert longest <= 30, "an option outlived option_len"


def test_low_level_rows_pair_each_state_with_its_own_goal_encoding():
    """Basketball's goal encodings are targets relative to the defender, so they change
    with every step: a low-level row holds the encodings the agent acted on (for
    Q(s, a, g)) and those after the step (for the bootstrap), never one for both."""
    env = basketball_defense_v1.vector_env(num_envs=4, n_players=3)
    spec = HierSpec.of(env)
    config = HierConfig(batch_size=8, high_buffer_size=256, low_buffer_size=256, low_relabel=False)
    agent = HierarchicalAgent(config, spec, option_len=30, total_updates=10)
    agent.attach_env(env, evaluation=False)
    obs, _ = env.reset(seed=0)
    every_goal = [np.full((4, 3), goal) for goal in spec.navigation_goals]
    for _step in range(12):
        before = np.stack([env.goal_encoding(goals) for goals in every_goal], -2)
        actions = agent.act(to_tensors(obs, "cpu"), 0).numpy()
        navigating = ~agent.pending.one_step
        next_obs, rewards, terminated, truncated, infos = env.step(actions)
        after = np.stack([env.goal_encoding(goals) for goals in every_goal], -2)
        done = terminated | truncated
        start = len(agent.low_replay)
        agent.store(make_transition(obs, actions, rewards, next_obs, terminated, truncated, infos, "cpu"))
        obs = next_obs
        rows = {name: agent.low_replay.storage[name][start : len(agent.low_replay)] for name in agent.low_replay.fields}
        env_index, agent_index = np.nonzero(navigating)
        expected_next = np.where(done[:, None, None, None], before, after)
        np.testing.assert_allclose(rows["goal_encodings"].float().numpy(), before[env_index, agent_index], atol=1e-3)
        np.testing.assert_allclose(
            rows["next_goal_encodings"].float().numpy(), expected_next[env_index, agent_index], atol=1e-3
        )
    moved = ~np.isclose(rows["goal_encodings"].float().numpy(), rows["next_goal_encodings"].float().numpy())
    assert moved.any(), "the targets should move relative to the defenders"
    batch = agent.low_level_batch(agent.low_replay.sample(8))
    assert not torch.equal(batch["goal"], batch["next_goal"])


def test_a_goal_policy_replaces_the_high_level_in_greedy_play():
    """act_greedy(obs, goal_policy): agents whose option ended take the policy's goals
    (a scripted high level over the learned low level); bad goals are refused."""
    from hmarl.envs.basketball_defense.scripted import GOAL_POLICIES

    env = basketball_defense_v1.vector_env(num_envs=8, n_players=3)
    config = HierConfig(batch_size=16, high_buffer_size=256, low_buffer_size=256, interrupt=True)
    agent = HierarchicalAgent(config, HierSpec.of(env), option_len=30, total_updates=10)
    obs, _ = env.reset(seed=2)
    agent.attach_env(env, evaluation=True)
    calls = []

    def policy(mask):
        calls.append(GOAL_POLICIES["help"](env.core, mask))
        return calls[-1]

    started = 0
    for _ in range(100):
        before = agent.eval_options.goals.copy()
        obs, *_ = env.step(agent.act_greedy(to_tensors(obs, "cpu"), policy).numpy())
        changed = agent.eval_options.goals != before
        if changed.any():
            np.testing.assert_array_equal(agent.eval_options.goals[changed], calls[-1][changed])
            started += int(changed.sum())
    assert started > 0 and (np.concatenate(calls) == env.goal_names.index("protect_rim")).any()
    agent.attach_env(env, evaluation=True)
    obs, _ = env.reset(seed=2)
    mask = env.goal_mask()
    with pytest.raises(ValueError, match="goal_policy"):
        agent.act_greedy(to_tensors(obs, "cpu"), lambda m: np.zeros(m.shape[:-1], dtype=float))
    with pytest.raises(ValueError, match="goal_policy"):
        agent.act_greedy(to_tensors(obs, "cpu"), lambda m: np.full(m.shape[:-1], m.shape[-1]))
    infeasible = int(np.argmin(mask.all(axis=(0, 1))))
    assert not mask[..., infeasible].all()
    with pytest.raises(ValueError, match="goal_policy"):
        agent.act_greedy(to_tensors(obs, "cpu"), lambda m: np.full(m.shape[:-1], infeasible))
