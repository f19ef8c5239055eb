"""Option termination in both modes and ACER rows against hand-built episodes."""

import numpy as np
import pytest

from hmarl.hier.acer import ACERRecorder, discounted_returns
from hmarl.hier.options import OptionOutcome, Options

F, T = False, True


def _advance(options, reached, feasible=None, one_step=None, invalid=None, done=(F,)):
    shape = options.goals.shape
    return options.advance(
        reached=np.array(reached, dtype=bool).reshape(shape),
        feasible=np.ones(shape, bool) if feasible is None else np.array(feasible).reshape(shape),
        one_step=np.zeros(shape, bool) if one_step is None else np.array(one_step).reshape(shape),
        invalid_action=np.zeros(shape, bool) if invalid is None else np.array(invalid).reshape(shape),
        episode_done=np.array(done, dtype=bool),
    )


def test_async_options_end_independently_with_intrinsic_reward():
    options = Options(num_envs=1, n_agents=2, n_goals=4, option_len=3, termination="async")
    assert options.deciding().all()
    options.start(np.array([[0, 1]]), options.deciding())
    outcome = _advance(options, reached=[F, T])
    np.testing.assert_array_equal(outcome.ended, [[F, T]])
    np.testing.assert_allclose(outcome.intrinsic_reward, [[-0.01, 0.99]])
    np.testing.assert_array_equal(options.deciding(), [[F, T]])
    options.start(np.array([[3, 2]]), options.deciding())
    assert options.goals.tolist() == [[0, 2]], "an agent mid-option keeps its goal"
    outcome = _advance(options, reached=[F, F])
    assert not outcome.ended.any()
    outcome = _advance(options, reached=[F, F])
    # Agent 0 has now run option_len=3 steps.
    np.testing.assert_array_equal(outcome.ended, [[T, F]])
    np.testing.assert_array_equal(outcome.duration, [[3, 2]])


def test_sync_options_end_together_and_infeasible_goals_end():
    options = Options(num_envs=2, n_agents=2, n_goals=4, option_len=10, termination="sync")
    options.start(np.zeros((2, 2), dtype=int), options.deciding())
    outcome = _advance(options, reached=[[F, F], [F, F]], feasible=[[T, F], [T, T]], done=(F, F))
    np.testing.assert_array_equal(outcome.ended, [[T, T], [F, F]])


def test_one_step_options_count_as_reached_when_the_action_had_effect():
    options = Options(num_envs=1, n_agents=2, n_goals=4, option_len=10)
    options.start(np.array([[2, 3]]), options.deciding())
    outcome = _advance(options, reached=[F, F], one_step=[T, T], invalid=[F, T])
    np.testing.assert_array_equal(outcome.reached, [[T, F]])
    np.testing.assert_array_equal(outcome.ended, [[T, T]])
    np.testing.assert_array_equal(options.actions(np.array([[0, 1]]), np.array([[5, -1]])), [[5, 1]])


def test_an_interrupted_option_ends_unreached():
    options = Options(num_envs=1, n_agents=2, n_goals=4, option_len=10)
    options.start(np.array([[0, 1]]), options.deciding())
    outcome = options.advance(
        np.zeros((1, 2), bool),
        np.ones((1, 2), bool),
        np.zeros((1, 2), bool),
        np.zeros((1, 2), bool),
        np.array([F]),
        interrupt=np.array([[T, F]]),
    )
    np.testing.assert_array_equal(outcome.ended, [[T, F]])
    assert not outcome.reached.any()
    np.testing.assert_array_equal(outcome.duration, [[1, 1]])
    np.testing.assert_array_equal(options.deciding(), [[T, F]])


def test_held_options_outlast_their_reach_and_count_it_as_success():
    options = Options(num_envs=1, n_agents=3, n_goals=4, option_len=3, hold=True)
    options.start(np.array([[0, 1, 2]]), options.deciding())
    outcome = _advance(options, reached=[T, F, T], one_step=[F, F, T])
    # The one-step option ends after its step; the held navigation option goes on.
    np.testing.assert_array_equal(outcome.ended, [[F, F, T]])
    np.testing.assert_allclose(outcome.intrinsic_reward, [[0.99, -0.01, 0.99]])
    np.testing.assert_array_equal(outcome.succeeded, [[T, F, T]])
    options.start(np.array([[3, 3, 1]]), options.deciding())
    outcome = _advance(options, reached=[F, F, F], feasible=[T, T, F])
    np.testing.assert_array_equal(outcome.ended, [[F, F, T]])
    np.testing.assert_array_equal(outcome.succeeded, [[T, F, F]], "a new option starts unreached")
    options.start(np.array([[3, 3, 2]]), options.deciding())
    outcome = _advance(options, reached=[F, T, F])
    # Agents 0 and 1 have run option_len=3 steps; agent 0 reached its goal on the first.
    np.testing.assert_array_equal(outcome.ended, [[T, T, F]])
    np.testing.assert_array_equal(outcome.succeeded, [[T, T, F]])
    np.testing.assert_array_equal(outcome.duration, [[3, 3, 1]])
    restored = Options(num_envs=1, n_agents=3, n_goals=4, option_len=3, hold=True)
    restored.load_state_dict(options.state_dict())
    np.testing.assert_array_equal(restored.reached_once, options.reached_once)


def test_episode_end_ends_options_without_crediting_reach():
    options = Options(num_envs=1, n_agents=1, n_goals=2, option_len=10)
    options.start(np.array([[1]]), options.deciding())
    outcome = _advance(options, reached=[T], done=(T,))
    assert outcome.ended.all() and not outcome.reached.any()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="termination"):
        Options(1, 1, 2, termination="whenever")
    options = Options(1, 1, 2)
    with pytest.raises(ValueError, match="goals must lie"):
        options.start(np.array([[2]]), np.array([[True]]))


def _episode(recorder):
    """Two agents, gamma 0.5. Agent 1's option ends after 2 steps, agent 0's after 3
    (the episode terminates then). Rewards: [1,0], [0,2], [4,4]."""
    obs = lambda k: np.full((1, 2, 1), float(k), np.float32)  # noqa: E731
    state = lambda k: np.full((1, 1), float(k), np.float32)  # noqa: E731
    mask = np.ones((1, 2, 3), dtype=bool)
    no = np.array([F])
    out = lambda ended: OptionOutcome(None, None, np.array([ended]), None)  # noqa: E731
    rows = []
    recorder.observe(obs(0), state(0), np.array([[0, 1]]), np.array([[T, T]]))
    rows.append(recorder.record(np.array([[1, 0]]), out([F, F]), obs(1), state(1), mask, no, no))
    recorder.observe(obs(1), state(1), np.array([[0, 1]]), np.array([[F, F]]))
    rows.append(recorder.record(np.array([[0, 2]]), out([F, T]), obs(2), state(2), mask, no, no))
    recorder.observe(obs(2), state(2), np.array([[0, 2]]), np.array([[F, T]]))
    rows.append(recorder.record(np.array([[4, 4]]), out([T, T]), obs(3), state(3), mask, np.array([T]), no))
    return rows


def _recorder(**kwargs):
    return ACERRecorder(num_envs=1, n_agents=2, obs_dim=1, state_dim=1, n_goals=3, option_len=5, gamma=0.5, **kwargs)


def test_concurrent_rows_follow_the_segments_between_decision_points():
    first, second, third = _episode(_recorder(augmented=False, concurrent=True))
    assert len(first["duration"]) == 0
    np.testing.assert_allclose(second["reward"], [[1.0, 1.0]])  # [1 + .5*0, 0 + .5*2]
    assert second["duration"].tolist() == [2]
    assert second["goal"].tolist() == [[0, 1]]
    assert second["next_free"].tolist() == [[F, T]], "agent 0 continues its option"
    assert second["obs"][0, :, 0].tolist() == [0, 0] and second["next_obs"][0, :, 0].tolist() == [2, 2]
    assert second["acting"].tolist() == [[T, T]] and not second["terminated"].any()
    np.testing.assert_allclose(third["reward"], [[4.0, 4.0]])
    assert third["duration"].tolist() == [1] and third["goal"].tolist() == [[0, 2]]
    assert third["terminated"].tolist() == [T]


def test_augmented_rows_start_at_every_intermediate_step():
    _, second, third = _episode(_recorder(augmented=True, concurrent=True))
    assert second["duration"].tolist() == [2, 1]
    np.testing.assert_allclose(second["reward"], [[1.0, 1.0], [0.0, 2.0]])
    assert second["obs"][:, 0, 0].tolist() == [0, 1]
    assert third["duration"].tolist() == [1]


def test_non_concurrent_rows_span_each_agents_own_option():
    _, second, third = _episode(_recorder(augmented=False, concurrent=False))
    assert second["acting"].tolist() == [[F, T]] and second["duration"].tolist() == [2]
    np.testing.assert_allclose(second["reward"][0, 1], 1.0)
    by_agent = {int(np.flatnonzero(a)[0]): i for i, a in enumerate(third["acting"])}
    agent0, agent1 = by_agent[0], by_agent[1]
    assert third["duration"][agent0] == 3 and third["duration"][agent1] == 1
    np.testing.assert_allclose(third["reward"][agent0, 0], 1.0 + 0.0 + 0.25 * 4)
    np.testing.assert_allclose(third["reward"][agent1, 1], 4.0)
    assert third["goal"][agent0].tolist() == [0, 1], "goals as held when agent 0's option started"


def test_augmented_non_concurrent_multiplies_rows_by_duration():
    _, second, third = _episode(_recorder(augmented=True, concurrent=False))
    assert sorted(second["duration"].tolist()) == [1, 2]
    assert sorted(third["duration"].tolist()) == [1, 1, 2, 3]


def test_episode_returns_hold_rows_until_the_episode_ends():
    """Rewards [1,0], [0,2], [4,4] with gamma 0.5: from step 0 the returns are
    [1 + 0 + .25*4, 0 + .5*2 + .25*4] = [2, 2], from step 1 [2, 4], from step 2 [4, 4]."""
    first, second, third = _episode(_recorder(augmented=True, concurrent=True, episode_returns=True))
    assert len(first["duration"]) == 0 and len(second["duration"]) == 0, "rows wait for the episode's end"
    assert sorted(third["duration"].tolist()) == [1, 1, 2]
    by_start = {int(obs[0, 0]): ret for obs, ret in zip(third["obs"], third["episode_return"], strict=True)}
    np.testing.assert_allclose(by_start[0], [2.0, 2.0])
    np.testing.assert_allclose(by_start[1], [2.0, 4.0])
    np.testing.assert_allclose(by_start[2], [4.0, 4.0])
    # the rows' own fields are those the recorder emits without returns
    plain = _episode(_recorder(augmented=True, concurrent=True))
    expected = np.concatenate([plain[1]["reward"], plain[2]["reward"]])[:, 1]
    np.testing.assert_allclose(np.sort(third["reward"][:, 1]), np.sort(expected))


def test_episode_returns_restart_with_each_episode_and_survive_a_checkpoint():
    recorder = _recorder(augmented=False, concurrent=True, episode_returns=True)
    _episode(recorder)
    obs = np.full((1, 2, 1), 7.0, np.float32)
    state = np.full((1, 1), 7.0, np.float32)
    mask = np.ones((1, 2, 3), dtype=bool)
    recorder.observe(obs, state, np.array([[1, 1]]), np.array([[T, T]]))
    ended = OptionOutcome(None, None, np.array([[T, F]]), None)
    assert len(recorder.record(np.array([[3, 3]]), ended, obs, state, mask, np.array([F]), np.array([F]))["obs"]) == 0
    resumed = _recorder(augmented=False, concurrent=True, episode_returns=True)
    resumed.load_state_dict(recorder.state_dict())
    for r in (recorder, resumed):
        r.observe(obs, state, np.array([[0, 1]]), np.array([[T, F]]))
    done = OptionOutcome(None, None, np.array([[T, T]]), None)
    outs = [r.record(np.array([[1, 1]]), done, obs, state, mask, np.array([F]), np.array([T])) for r in (recorder, resumed)]
    for out in outs:
        # the new episode's rewards alone, [3 + .5*1, 1] from its first step; truncation cuts the return
        np.testing.assert_allclose(sorted(out["episode_return"][:, 0].tolist()), [1.0, 3.5])
    np.testing.assert_array_equal(outs[0]["episode_return"], outs[1]["episode_return"])


def test_n_step_rows_extend_over_the_following_segments():
    """Rewards [1,0], [0,2], [4,4] with gamma 0.5; segments [0, 2) and [2, 3), the episode
    terminating at 3. With n_step 2 the row from step 1 takes in the last segment; the row
    from step 0 already spans 2 steps and keeps its bootstrap at step 2."""
    first, second, third = _episode(_recorder(augmented=True, concurrent=True, n_step=2))
    assert len(first["duration"]) == 0 and len(second["duration"]) == 0, "rows wait for the episode's end"
    rows = {int(obs[0, 0]): i for i, obs in enumerate(third["obs"])}
    start0, start1, start2 = rows[0], rows[1], rows[2]
    np.testing.assert_allclose(third["reward"][start0], [1.0, 1.0])
    assert third["duration"][start0] == 2 and not third["terminated"][start0]
    assert third["next_obs"][start0, 0, 0] == 2 and third["next_free"][start0].tolist() == [F, T]
    assert third["next_goal"][start0].tolist() == [0, 1], "agent 0 continues goal 0 at step 2"
    np.testing.assert_allclose(third["reward"][start1], [0.0 + 0.5 * 4, 2.0 + 0.5 * 4])
    assert third["duration"][start1] == 2 and third["terminated"][start1]
    assert third["goal"][start1].tolist() == [0, 1] and third["next_goal"][start1].tolist() == [0, 2]
    np.testing.assert_allclose(third["reward"][start2], [4.0, 4.0])
    assert third["duration"][start2] == 1
    both = _episode(_recorder(augmented=True, concurrent=True, n_step=2, episode_returns=True))[2]
    np.testing.assert_allclose(both["reward"], third["reward"])
    by_start = {int(obs[0, 0]): ret for obs, ret in zip(both["obs"], both["episode_return"], strict=True)}
    np.testing.assert_allclose([by_start[0], by_start[1], by_start[2]], [[2.0, 2.0], [2.0, 4.0], [4.0, 4.0]])
    longer = _episode(_recorder(augmented=True, concurrent=True, n_step=3))[2]
    at0 = next(i for i, obs in enumerate(longer["obs"]) if obs[0, 0] == 0)
    np.testing.assert_allclose(longer["reward"][at0], [1.0 + 0.25 * 4, 1.0 + 0.25 * 4])
    assert longer["duration"][at0] == 3 and longer["terminated"][at0] and longer["next_obs"][at0, 0, 0] == 3


def test_n_step_rows_stop_at_a_truncation_and_bootstrap_there():
    recorder = _recorder(augmented=False, concurrent=True, n_step=4)
    obs = lambda k: np.full((1, 2, 1), float(k), np.float32)  # noqa: E731
    state = lambda k: np.full((1, 1), float(k), np.float32)  # noqa: E731
    mask = np.ones((1, 2, 3), dtype=bool)
    every = OptionOutcome(None, None, np.array([[T, T]]), None)
    out = None
    for k in range(3):  # one-step segments, rewards 1, 2, 3; the time limit cuts after the third
        recorder.observe(obs(k), state(k), np.array([[k, k]]), np.array([[T, T]]))
        out = recorder.record(
            np.array([[k + 1, k + 1]]), every, obs(k + 1), state(k + 1), mask, np.array([F]), np.array([k == 2])
        )
    by_start = {int(o[0, 0]): i for i, o in enumerate(out["obs"])}
    first = by_start[0]
    np.testing.assert_allclose(out["reward"][first], [1 + 0.5 * 2 + 0.25 * 3] * 2)
    assert out["duration"][first] == 3 and not out["terminated"][first], "a truncation bootstraps"
    assert out["next_obs"][first, 0, 0] == 3 and out["next_goal"][first].tolist() == [2, 2]
    assert out["duration"][by_start[2]] == 1


def test_n_step_needs_concurrent_rows_and_a_positive_count():
    with pytest.raises(ValueError, match="concurrent"):
        _recorder(concurrent=False, n_step=2)
    with pytest.raises(ValueError, match="n_step"):
        _recorder(n_step=0)


def test_discounted_returns_run_to_each_episodes_end():
    # Copy 0 plays 3 steps, rewards 1, 0, 2; copy 1 plays 2 steps, rewards 0, 4 (the third is after its end).
    rewards = np.array([[1.0, 0.0], [0.0, 4.0], [2.0, 9.0]])
    alive = np.array([[True, True], [True, True], [True, False]])
    np.testing.assert_allclose(discounted_returns(rewards, alive, 0.5), [[1.5, 2.0], [1.0, 4.0], [2.0, 0.0]])
    per_agent = discounted_returns(np.stack([rewards, 2 * rewards], -1), alive, 0.5)
    np.testing.assert_allclose(per_agent[..., 1], 2 * per_agent[..., 0])
