"""Rules of basketball_defense_v1: invariants, outcomes, options, errors and game sanity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hmarl.envs import basketball_defense_v1
from hmarl.envs.basketball_defense import OUTCOMES, rules
from hmarl.envs.basketball_defense.core import BLOCK, NOOP, PASS, STEAL
from hmarl.envs.basketball_defense.scripted import DEFENSES, GOAL_POLICIES


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_players=st.integers(1, 5),
    skill=st.sampled_from(sorted(rules.SKILLS)),
)
def test_invariants_under_random_play(seed: int, n_players: int, skill: str) -> None:
    venv = basketball_defense_v1.vector_env(num_envs=16, n_players=n_players, skill=skill)
    obs, _ = venv.reset(seed=seed)
    core = venv.core
    rng = np.random.default_rng(seed)
    finished = 0
    for _ in range(120):
        actions = rng.integers(0, venv.n_actions, (16, n_players))
        obs, rewards, terminations, truncations, infos = venv.step(actions)
        for positions in (core.off_pos, core.def_pos):
            assert np.all(np.abs(positions[0]) <= rules.HALF_WIDTH)
            assert np.all((positions[1] >= 0.0) & (positions[1] <= rules.COURT_LENGTH))
        assert np.all((core.holder >= 0) & (core.holder < n_players))
        has_ball = obs["observation"][:, 0, 15 + 4 : 15 + 5 * n_players : 5]
        in_flight = obs["observation"][:, 0, 8] == 1.0
        np.testing.assert_array_equal(has_ball.sum(axis=1), np.where(in_flight, 0, 1))
        assert np.all((obs["observation"] >= -1.0) & (obs["observation"] <= 1.0))
        assert np.all((obs["state"] >= -1.0) & (obs["state"] <= 1.0))
        assert not np.any(truncations), "possessions end on their own before max_cycles"
        done = np.flatnonzero(terminations)
        finished += done.size
        outcome = infos["outcome"][done]
        assert np.all(outcome != OUTCOMES.index("none"))
        flags = infos["miss"][done] + infos["block"][done] + infos["steal"][done]
        made = np.isin(outcome, (OUTCOMES.index("made_2"), OUTCOMES.index("made_3")))
        clock = outcome == OUTCOMES.index("shot_clock")
        np.testing.assert_array_equal(flags + made + clock, 1)
        expected = np.where(made, -infos["points_allowed"][done], 1.0)
        np.testing.assert_array_equal(rewards[done], np.repeat(expected[:, None], n_players, 1))
        np.testing.assert_array_equal(rewards[terminations == 0], 0.0)
    assert finished > 0


def test_points_by_distance() -> None:
    x = np.array([0.0, 0.0, 6.7, -6.7, 4.0])
    y = np.array([2.0, 8.4, 1.0, 1.0, 7.5])
    np.testing.assert_array_equal(rules.shot_points(x, y), [2, 3, 3, 3, 3])
    assert rules.shot_points(np.array(0.0), np.array(8.0)) == 2


def test_make_probability_falls_with_distance_and_contest() -> None:
    skill = rules.SKILLS["normal"]
    p = rules.open_make_probability(np.array([0.5, 3.0, 7.0, 10.0]), skill)
    assert np.all(np.diff(p) < 0)
    contests = rules.contest(np.array([3.0, 2.0, 1.0, 0.5]), np.full(4, rules.STANCE_SLIDE), np.ones(4))
    assert contests[0] == 0.0 and np.all(np.diff(contests) > 0) and contests[-1] == 1.0
    running = rules.contest(np.array([1.0]), np.array([rules.STANCE_RUN]), np.ones(1))
    assert running < contests[2]


def test_shot_clock_violation_is_a_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    # An offense that never shoots and never loses the ball: only the clock ends it.
    monkeypatch.setattr(rules, "SHOOT_HAZARD", 0.0)
    venv = basketball_defense_v1.vector_env(num_envs=4, shot_clock_s=1.0)
    venv.reset(seed=0)
    venv.core.skill = rules.Skill(shooting=1.0, speed=1.0, turnover=0.0, shot_threshold=1.0)
    for step in range(1, 11):
        _, rewards, terminations, _, infos = venv.step(np.zeros((4, 3), dtype=int))
        if step < 10:
            assert not terminations.any()
    assert terminations.all()
    assert np.all(infos["outcome"] == OUTCOMES.index("shot_clock"))
    np.testing.assert_array_equal(rewards, 1.0)


def test_steal_and_block_masks_and_invalid_actions() -> None:
    venv = basketball_defense_v1.vector_env(num_envs=1, n_players=1)
    obs, _ = venv.reset(seed=0)
    core = venv.core
    assert obs["action_mask"][0, 0, STEAL] == 0 and obs["action_mask"][0, 0, BLOCK] == 0
    _, _, _, _, infos = venv.step([[STEAL]])
    assert infos["invalid_action"][0, 0], "a steal during the check ball is invalid"
    # Walk the defender into the baseline corner: running further out is blocked.
    core.def_pos[:, 0, 0] = (-rules.HALF_WIDTH, 0.0)
    core._reach = None
    _, _, _, _, infos = venv.step([[5]])
    assert infos["invalid_action"][0, 0]
    _, _, _, _, infos = venv.step([[1]])
    assert not infos["invalid_action"][0, 0]


def test_steal_attempt_in_reach() -> None:
    venv = basketball_defense_v1.vector_env(num_envs=256, n_players=1)
    venv.reset(seed=1)
    core = venv.core
    for _ in range(rules.CHECK_STEPS):
        venv.step(np.zeros((256, 1), dtype=int))
    core.def_pos[:, 0] = core.off_pos[:, 0] + np.array([[0.3], [0.0]])
    core._reach = None
    mask = core.action_masks()
    playing = core.phase != PASS
    assert np.all(mask[playing, 0, STEAL] == 1)
    _, rewards, terminations, _, infos = venv.step(np.full((256, 1), STEAL))
    stolen = infos["steal"] == 1
    assert 0 < stolen.sum() < 256
    np.testing.assert_array_equal(rewards[stolen], 1.0)
    failed = ~terminations
    masks = core.action_masks()[failed]
    assert np.all(masks[:, 0, 1:] == 0) and np.all(masks[:, 0, NOOP] == 1), "a failed steal costs time"


def test_options_interface() -> None:
    venv = basketball_defense_v1.vector_env(num_envs=8, n_players=3)
    venv.reset(seed=0)
    names = venv.goal_names
    assert names == ["guard_0", "guard_1", "guard_2", "double_team", "protect_rim", "steal", "block"]
    goals = np.tile(np.arange(3), (8, 1))
    # guard_k is reached within GUARD_RANGE of the spot GUARD_GAP metres from player k
    # towards the basket, and not beyond it.
    core = venv.core
    toward_basket = rules.BASKET[:, None, None] - core.off_pos
    toward_basket /= np.linalg.norm(toward_basket, axis=0, keepdims=True)
    spots = core.off_pos + rules.GUARD_GAP * toward_basket
    sideways = np.stack([-toward_basket[1], toward_basket[0]])
    core.def_pos = spots + 0.9 * rules.GUARD_RANGE * sideways
    assert venv.goal_reached(goals).all()
    core.def_pos = spots + 1.1 * rules.GUARD_RANGE * sideways
    assert not venv.goal_reached(goals).any()
    core.def_pos = core.off_pos + (rules.GUARD_GAP + 1.1 * rules.GUARD_RANGE) * toward_basket
    assert not venv.goal_reached(goals).any(), "too deep towards the basket"
    core.def_pos = spots.copy()
    encoding = venv.goal_encoding(goals)
    assert encoding.shape == (8, 3, venv.goal_dim) and encoding.dtype == np.float32
    np.testing.assert_array_equal(encoding[:, :, : len(names)].argmax(-1), goals)
    mask = venv.goal_mask()
    assert mask.shape == (8, 3, len(names)) and mask.dtype == bool
    assert not mask[..., names.index("steal")].any(), "no steal during the check ball"
    primitive = venv.goal_primitive(np.full((8, 3), names.index("steal")))
    np.testing.assert_array_equal(primitive, STEAL)
    np.testing.assert_array_equal(venv.goal_primitive(goals), -1)
    rim = np.full((8, 3), names.index("protect_rim"))
    assert not venv.goal_reached(rim).any()
    with pytest.raises(ValueError, match="outside"):
        venv.goal_reached(np.full((8, 3), len(names)))


def test_the_matched_view_shows_a_defender_only_his_own_man() -> None:
    n = 3
    full = basketball_defense_v1.vector_env(num_envs=16, n_players=n)
    matched = basketball_defense_v1.vector_env(num_envs=16, n_players=n, view="matched")
    space = basketball_defense_v1.parallel_env(view="matched").observation_space("defender_0")
    assert matched.core.obs_dim == 20 + n and space["observation"].shape == (20 + n,)
    obs_full, _ = full.reset(seed=4)
    obs_matched, _ = matched.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(30):
        for i in range(n):
            own = obs_full["observation"][:, i]
            seen = obs_matched["observation"][:, i]
            np.testing.assert_array_equal(seen[:, :15], own[:, :15])
            np.testing.assert_array_equal(seen[:, 15:20], own[:, 15 + 5 * i : 20 + 5 * i])
            np.testing.assert_array_equal(seen[:, 20:], np.eye(n)[i][None].repeat(16, 0))
        np.testing.assert_array_equal(obs_matched["state"], obs_full["state"])
        actions = rng.integers(0, 17, (16, n))
        obs_full, *_ = full.step(actions)
        obs_matched, *_ = matched.step(actions)
    # Where player 0 has the ball (or it flies to him), moving the other offensive players
    # changes nothing defender 0 sees in the matched view, and changes the full view.
    ball_with_0 = matched.core.holder == 0
    assert ball_with_0.any() and np.array_equal(full.core.holder, matched.core.holder)
    before = {"matched": matched.core.observations()[:, 0].copy(), "full": full.core.observations()[:, 0].copy()}
    for name, venv in (("matched", matched), ("full", full)):
        venv.core.off_pos[:, 1:] += 0.5
        venv.core._ball = venv.core._reach = None
        after = venv.core.observations()[:, 0]
        unchanged = (after == before[name]).all(-1)
        assert unchanged[ball_with_0].all() if name == "matched" else not unchanged[ball_with_0].any()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"skill": "legendary"}, ValueError, "skill"),
        ({"n_players": 0}, ValueError, "n_players"),
        ({"n_players": 6}, ValueError, "n_players"),
        ({"n_players": 2.5}, TypeError, "n_players"),
        ({"shot_clock_s": 0.5}, ValueError, "shot_clock_s"),
        ({"max_cycles": 0}, ValueError, "max_cycles"),
        ({"view": "egocentric"}, ValueError, "view"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        basketball_defense_v1.parallel_env(**kwargs)


def test_bad_actions() -> None:
    env = basketball_defense_v1.parallel_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step({agent: 19 for agent in env.agents})
    with pytest.raises(ValueError, match="outside the action space"):
        env.step({agent: -1 for agent in env.agents})
    venv = basketball_defense_v1.vector_env(num_envs=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((2, 2), dtype=int))


def test_scripted_defenses_order() -> None:
    """A small version of the sanity table: man-to-man allows clearly fewer points."""
    points = {}
    for name, defense in DEFENSES.items():
        venv = basketball_defense_v1.vector_env(num_envs=400)
        venv.reset(seed=0)
        rng = np.random.default_rng(0)
        allowed: list[np.ndarray] = []
        while sum(len(a) for a in allowed) < 800:
            _, _, terminations, truncations, infos = venv.step(defense(venv.core, rng))
            allowed.append(infos["points_allowed"][terminations | truncations])
        points[name] = np.concatenate(allowed).mean()
    assert points["stand_still"] > 1.0
    assert points["man_to_man"] < 0.75 * points["stand_still"]


def test_scripted_high_levels_pick_feasible_goals_by_their_rules() -> None:
    """Man-to-man keeps guard_i but for interceptions and blocks; block is feasible
    only at the release, within reach; help also sends the defender whose man stands
    farthest from the ball to the rim."""
    venv = basketball_defense_v1.vector_env(num_envs=64, n_players=3)
    venv.reset(seed=1)
    core = venv.core
    n = 3
    protect_rim, steal, block = n + 1, n + 2, n + 3
    rng = np.random.default_rng(1)
    seen = {"steal": 0, "block": 0, "help": 0, "early": 0}
    for _ in range(300):
        mask = venv.goal_mask()
        man = GOAL_POLICIES["man_to_man"](core, mask)
        helped = GOAL_POLICIES["help"](core, mask)
        assert np.take_along_axis(mask, man[..., None], -1).all()
        assert np.take_along_axis(mask, helped[..., None], -1).all()
        intercept = mask[..., steal] & (core.phase == PASS)[:, None]
        in_reach = core.action_masks()[..., BLOCK] == 1
        release = in_reach & (core.shot_step == rules.SHOT_MOTION_STEPS - 1)[:, None]
        expected = np.where(release, block, np.where(intercept, steal, np.arange(n)))
        np.testing.assert_array_equal(man, expected)
        seen["steal"] += int((man == steal).sum())
        seen["block"] += int((man == block).sum())
        np.testing.assert_array_equal(mask[..., block], release)
        seen["early"] += int((in_reach & ~release).sum())
        # help differs from man-to-man only where the weak-side defender would guard.
        ball = core._ball_position()
        weak = np.hypot(*(core.off_pos - ball[:, None, :])).argmax(axis=0)
        differs = helped != man
        assert (helped[differs] == protect_rim).all()
        rows, cols = np.nonzero(differs)
        np.testing.assert_array_equal(cols, weak[rows])
        assert (differs.sum(axis=1) <= 1).all()
        seen["help"] += int(differs.sum())
        venv.step(DEFENSES["man_to_man"](core, rng))
    assert min(seen.values()) > 0, seen


def test_moves_are_legal_and_valid_during_the_check() -> None:
    venv = basketball_defense_v1.vector_env(num_envs=4, n_players=2)
    obs, _ = venv.reset(seed=0)
    run_right = 1
    for _ in range(rules.CHECK_STEPS):
        assert (obs["action_mask"][:, :, run_right] == 1).all(), "moves are allowed while taking position"
        assert (obs["action_mask"][:, :, [STEAL, BLOCK]] == 0).all(), "the ball is dead during the check"
        before = venv.core.def_pos.copy()
        obs, _, _, _, infos = venv.step(np.full((4, 2), run_right))
        assert not infos["invalid_action"].any()
        assert (venv.core.def_pos[0] > before[0]).all()


def test_version_0_still_loads_with_a_deprecation_warning() -> None:
    import importlib

    from hmarl.envs import basketball_defense_v0

    with pytest.warns(DeprecationWarning, match="basketball_defense_v1"):
        importlib.reload(basketball_defense_v0)
    venv = basketball_defense_v0.vector_env(num_envs=2, n_players=2)
    obs, _ = venv.reset(seed=0)
    assert venv.metadata["name"] == "basketball_defense_v0"
    assert (obs["action_mask"][:, :, 1:] == 0).all(), "version 0 keeps its check-phase mask"


@pytest.mark.parametrize("max_cycles", [0, 10**6 + 1, 10**23])
def test_max_cycles_out_of_range_is_rejected(max_cycles) -> None:
    with pytest.raises(ValueError, match=r"max_cycles=.* must be in \[1, 1000000\]"):
        basketball_defense_v1.vector_env(max_cycles=max_cycles)
