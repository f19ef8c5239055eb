"""Rules, layouts, options and bad input of ``trash_collection_v0`` (batched face)."""

from __future__ import annotations

import numpy as np
import pytest

from hmarl.envs import trash_collection_v0
from hmarl.envs.trash_collection import generator
from hmarl.envs.trash_collection.core import PICK, PLACE, STAY
from hmarl.envs.trash_collection.layouts import load_layout, parse_map
from hmarl.envs.trash_collection.planner import ShortestPathPlanner

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


@pytest.fixture
def map_env(tmp_path):
    def build(text: str, num_envs: int = 1, **kwargs):
        path = tmp_path / "map.txt"
        path.write_text(text)
        venv = trash_collection_v0.vector_env(num_envs=num_envs, layout=str(path), **kwargs)
        venv.reset(seed=0)
        return venv

    return build


def cell(venv, x: int, y: int) -> int:
    return y * venv.core.width + x


# --- the original tasks, exactly ---------------------------------------------------
ORIGINAL = {
    "room": dict(
        size=(11, 11),
        walls={
            (0, 5),
            (1, 5),
            (2, 5),
            *((2, y) for y in range(2, 9)),
            (7, 1),
            *((x, 2) for x in range(7, 11)),
            *((8, y) for y in range(7, 11)),
        },
        agents=[(3, 4), (3, 6)],
        trash=[(1, 4), (0, 6)],
        dumps=[(10, 1), (10, 10)],
        in_wall=[False, False],
        max_cycles=100,
    ),
    "ring": dict(
        size=(11, 11),
        walls=set(),
        agents=[(4, 4), (6, 6)],
        trash={(4, 1), (6, 1), (9, 4), (9, 6), (6, 9), (4, 9), (1, 6), (1, 4)},
        dumps={(4, 6), (6, 4)},
        in_wall=[False, False],
        max_cycles=100,
    ),
    "coordination": dict(
        size=(15, 7),
        walls={(7, 0), (7, 2), (7, 3), (7, 4), (7, 6)},
        agents=[(3, 3), (10, 3)],
        trash=[(0, 3), (14, 3)],
        dumps=[(7, 1), (7, 5)],
        in_wall=[True, True],
        max_cycles=50,
    ),
}


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_builtin_layouts_reproduce_the_original_tasks(name):
    expected = ORIGINAL[name]
    layout = load_layout(name)
    assert (layout.width, layout.height) == expected["size"]
    walls = {(x, y) for y, x in zip(*np.nonzero(layout.walls), strict=True)}
    assert walls == expected["walls"]
    same = set if isinstance(expected["trash"], set) else list
    assert same(layout.trash) == expected["trash"]
    assert (set if isinstance(expected["dumps"], set) else list)(layout.dumps) == expected["dumps"]
    assert layout.agents == expected["agents"]
    assert layout.dump_in_wall == expected["in_wall"]
    assert layout.max_cycles == expected["max_cycles"]
    core = trash_collection_v0.vector_env(layout=name).core
    assert core.max_cycles == expected["max_cycles"]


@pytest.mark.parametrize("name, optimum", [("room", 1.0), ("ring", 4.0), ("coordination", 2.0)])
def test_planner_reaches_the_known_optimum(name, optimum):
    venv = trash_collection_v0.vector_env(num_envs=2, layout=name)
    venv.reset(seed=3)
    planner = ShortestPathPlanner(venv.core)
    returns = np.zeros(2)
    finished = np.zeros(2, dtype=bool)
    while not finished.all():
        _, rewards, terminated, truncated, infos = venv.step(planner.act())
        returns += np.where(finished, 0.0, rewards.sum(1))
        done = (terminated | truncated) & ~finished
        assert infos["success"][done].all()
        finished |= done
    np.testing.assert_allclose(returns, optimum)


def test_planner_solves_random_layouts():
    venv = trash_collection_v0.vector_env(
        num_envs=8, layout="random", n_agents=3, n_trash=5, wall_density=0.15, max_cycles=400
    )
    venv.reset(seed=5)
    planner = ShortestPathPlanner(venv.core)
    success = []
    while len(success) < 8:
        _, _, terminated, truncated, infos = venv.step(planner.act())
        success += list(infos["success"][terminated | truncated])
    assert np.mean(success) >= 0.75


# --- movement ----------------------------------------------------------------------
OPEN = "reward: place\n.....\n.....\n.A.A.\n.....\nT...D\n"


def place_agents(venv, *cells: int) -> None:
    venv.core.pos[0] = cells
    venv.core.board[0, venv.core.n_cells : 2 * venv.core.n_cells] = 0.0
    venv.core.board[0, venv.core.n_cells + np.array(cells)] = 1.0


def test_moves_in_all_directions(map_env):
    venv = map_env(OPEN)
    a0, a1 = cell(venv, 1, 2), cell(venv, 3, 2)
    assert list(venv.core.pos[0]) == [a0, a1]
    venv.step([[UP, DOWN]])
    assert list(venv.core.pos[0]) == [cell(venv, 1, 3), cell(venv, 3, 1)]
    venv.step([[LEFT, RIGHT]])
    assert list(venv.core.pos[0]) == [cell(venv, 0, 3), cell(venv, 4, 1)]
    _, _, _, _, infos = venv.step([[LEFT, RIGHT]])
    assert list(venv.core.pos[0]) == [cell(venv, 0, 3), cell(venv, 4, 1)]
    assert infos["invalid_action"][0].all()
    assert not venv.core.action_masks()[0, 0, LEFT] and not venv.core.action_masks()[0, 1, RIGHT]


def test_walls_and_wall_dumps_block(map_env):
    venv = map_env("reward: place\n.#.\n.A.\nAX.\nT..\n")
    a0, a1 = cell(venv, 0, 1), cell(venv, 1, 2)
    assert list(venv.core.pos[0]) == [a0, a1]
    _, _, _, _, infos = venv.step([[RIGHT, UP]])
    assert list(venv.core.pos[0]) == [a0, a1]
    assert infos["invalid_action"][0].all()
    _, _, _, _, infos = venv.step([[STAY, DOWN]])
    assert list(venv.core.pos[0]) == [a0, a1]
    assert list(infos["invalid_action"][0]) == [False, True]


def test_swapping_agents_both_stay(map_env):
    venv = map_env(OPEN)
    place_agents(venv, cell(venv, 1, 2), cell(venv, 2, 2))
    _, _, _, _, infos = venv.step([[RIGHT, LEFT]])
    assert list(venv.core.pos[0]) == [cell(venv, 1, 2), cell(venv, 2, 2)]
    assert infos["invalid_action"][0].all()


def test_following_an_agent_that_moves_away_succeeds(map_env):
    venv = map_env(OPEN)
    place_agents(venv, cell(venv, 1, 2), cell(venv, 2, 2))
    venv.step([[RIGHT, RIGHT]])
    assert list(venv.core.pos[0]) == [cell(venv, 2, 2), cell(venv, 3, 2)]


def test_moving_into_a_staying_agent_fails(map_env):
    venv = map_env(OPEN)
    place_agents(venv, cell(venv, 1, 2), cell(venv, 2, 2))
    _, _, _, _, infos = venv.step([[RIGHT, STAY]])
    assert list(venv.core.pos[0]) == [cell(venv, 1, 2), cell(venv, 2, 2)]
    assert list(infos["invalid_action"][0]) == [True, False]


def test_contested_cell_goes_to_one_random_agent(map_env):
    venv = map_env(OPEN, num_envs=64)
    venv.core.pos[:] = [cell(venv, 1, 2), cell(venv, 3, 2)]
    venv.step(np.tile([[RIGHT, LEFT]], (64, 1)))
    middle = cell(venv, 2, 2)
    moved = venv.core.pos == middle
    assert (moved.sum(1) == 1).all()
    assert 0 < moved[:, 0].sum() < 64


def test_pick_and_place_conserve_and_reward(map_env):
    venv = map_env("reward: place\nA.\nTD\n")
    core = venv.core
    _, _, _, _, infos = venv.step([[PICK]])
    assert infos["invalid_action"][0, 0]
    assert core.action_masks()[0, 0, PICK] == 0
    venv.step([[DOWN]])
    assert core.action_masks()[0, 0, PICK] == 1
    _, rewards, _, _, infos = venv.step([[PICK]])
    assert core.carrying[0, 0] == 0 and rewards[0, 0] == 0 and not infos["invalid_action"][0, 0]
    obs = core.observations()[0, 0]
    assert obs[-1] == 1.0 and obs[2 * core.n_cells : 3 * core.n_cells].sum() == 0
    _, _, _, _, infos = venv.step([[PICK]])
    assert infos["invalid_action"][0, 0]
    _, rewards, terminated, _, infos = venv.step([[PLACE]])
    assert rewards[0, 0] == 0.5 and terminated[0]
    assert infos["trash_collected"][0] == 1 and infos["success"][0]
    assert infos["episode_length"][0] == 5
    assert infos["episode_return"][0, 0] == 0.5


def test_place_needs_an_adjacent_dump(map_env):
    venv = map_env("reward: place\nT.D\nA..\n")
    venv.step([[UP]])
    venv.step([[PICK]])
    _, rewards, _, _, infos = venv.step([[PLACE]])
    assert rewards[0, 0] == 0 and infos["invalid_action"][0, 0]
    venv.step([[RIGHT]])
    _, rewards, terminated, _, _ = venv.step([[PLACE]])
    assert rewards[0, 0] == 0.5 and terminated[0]


def test_extra_actions_never_do_anything(map_env):
    venv = map_env(OPEN, extra_actions=5)
    assert venv.n_actions == 12
    start = venv.core.pos.copy()
    _, _, _, _, infos = venv.step([[7, 11]])
    assert (venv.core.pos == start).all() and infos["invalid_action"].all()
    assert venv.core.action_masks()[0, :, 7:].sum() == 0


def test_shared_reward_gives_everyone_the_sum(map_env):
    venv = map_env("reward: place\nA.A\nTD.\n", reward_mode="shared")
    venv.step([[DOWN, STAY]])
    venv.step([[PICK, STAY]])
    _, rewards, _, _, _ = venv.step([[PLACE, STAY]])
    assert list(rewards[0]) == [0.5, 0.5]


def run_coordination(dump_of_agent: tuple[int, int]) -> np.ndarray:
    """Both agents carry their trash to the chosen dumps (0 bottom, 1 top)."""
    venv = trash_collection_v0.vector_env(layout="coordination")
    venv.reset(seed=0)
    total = np.zeros(2)
    path0 = [LEFT] * 3 + [PICK] + [RIGHT] * 6
    path1 = [RIGHT] * 4 + [PICK] + [LEFT] * 6
    vertical = {0: [DOWN, DOWN], 1: [UP, UP]}
    plan0 = path0 + vertical[dump_of_agent[0]] + [PLACE]
    plan1 = path1 + vertical[dump_of_agent[1]] + [PLACE]
    for step in range(max(len(plan0), len(plan1))):
        actions = [[plan0[step] if step < len(plan0) else STAY, plan1[step] if step < len(plan1) else STAY]]
        _, rewards, terminated, _, infos = venv.step(actions)
        total += rewards[0]
        if step < max(len(plan0), len(plan1)) - 1:
            assert rewards.sum() == 0 and not terminated[0]
    assert terminated[0] and infos["success"][0]
    return total


@pytest.mark.parametrize("dumps, payoff", [((0, 0), 1.0), ((1, 1), 0.5), ((0, 1), 0.1), ((1, 0), 0.1)])
def test_coordination_pays_at_the_end(dumps, payoff):
    np.testing.assert_allclose(run_coordination(dumps), [payoff, payoff])


def test_time_limit_truncates_and_auto_resets():
    venv = trash_collection_v0.vector_env(num_envs=3, layout="ring", max_cycles=4)
    obs, _ = venv.reset(seed=0)
    first = obs["observation"].copy()
    for _step in range(4):
        obs, _, terminated, truncated, infos = venv.step(np.full((3, 2), STAY))
    assert truncated.all() and not terminated.any()
    assert (infos["episode_length"] == 4).all()
    np.testing.assert_array_equal(obs["observation"], first)
    assert (venv.core.t == 0).all()


# --- observation, state, options ----------------------------------------------------
def test_observation_and_state_layout():
    venv = trash_collection_v0.vector_env(layout="room")
    obs, _ = venv.reset(seed=0)
    core = venv.core
    n = core.n_cells
    o = obs["observation"][0]
    assert o.shape == (2, 5 * n + 1) and o.dtype == np.float32
    for agent, (x, y) in enumerate([(3, 4), (3, 6)]):
        channels = o[agent, :-1].reshape(5, 11, 11)
        assert channels[0, y, x] == 1 and channels[0].sum() == 1
        assert channels[1].sum() == 1 and channels[1, y, x] == 0
        assert channels[2, 4, 1] == 1 and channels[2, 6, 0] == 1 and channels[2].sum() == 2
        assert channels[3, 1, 10] == 1 and channels[3, 10, 10] == 1
        assert channels[4].sum() == len(ORIGINAL["room"]["walls"])
    state = obs["state"][0]
    assert state.shape == (core.state_dim,) == ((2 + 3) * n + 2 + 1,)
    assert state[cell(venv, 3, 4)] == 1 and state[n + cell(venv, 3, 6)] == 1
    assert state[-1] == 1.0
    venv.step([[STAY, STAY]])
    assert venv.core.states()[0, -1] == pytest.approx(0.99)


def test_goal_interface_room():
    venv = trash_collection_v0.vector_env(num_envs=2, layout="room")
    venv.reset(seed=0)
    assert venv.goal_names == ["goto_dump_0", "goto_dump_1", "goto_trash_0", "goto_trash_1", "pick", "place"]
    mask = venv.goal_mask()
    assert mask.shape == (2, 2, 6)
    assert mask[:, :, :4].all() and not mask[:, :, 4:].any()
    goals = np.array([[2, 3], [4, 5]])
    np.testing.assert_array_equal(venv.goal_primitive(goals), [[-1, -1], [PICK, PLACE]])
    encoding = venv.goal_encoding(goals)
    assert encoding.shape == (2, 2, venv.goal_dim) == (2, 2, 121 + 4)
    assert encoding[0, 0, cell(venv, 1, 4)] == 1 and encoding[0, 0, 121 + 1] == 1
    assert encoding[1, 1, :121].sum() == 0 and encoding[1, 1, 121 + 3] == 1
    assert not venv.goal_reached(np.full((2, 2), 2)).any()
    venv.core.pos[0, 0] = cell(venv, 1, 4)
    assert venv.goal_reached(np.full((2, 2), 2))[0, 0]
    mask = venv.goal_mask()
    assert mask[0, 0, 4] and not mask[0, 0, 5]
    venv.step([[PICK, STAY], [STAY, STAY]])
    mask = venv.goal_mask()
    assert not mask[0, :, 2].any() and mask[0, :, 3].all()
    assert venv.goal_reached(np.full((2, 2), 4))[0, 0]
    venv.core.pos[0, 0] = cell(venv, 9, 1)
    assert venv.goal_reached(np.full((2, 2), 0))[0, 0]
    assert not venv.goal_reached(np.full((2, 2), 1))[0, 0]
    assert venv.goal_mask()[0, 0, 5]


def test_goal_interface_coordination_reachability():
    venv = trash_collection_v0.vector_env(layout="coordination")
    venv.reset(seed=0)
    mask = venv.goal_mask()[0]
    np.testing.assert_array_equal(mask[:, :4], [[True, True, True, False], [True, True, False, True]])
    venv.core.pos[0] = [cell(venv, 6, 1), cell(venv, 8, 5)]
    reached = venv.goal_reached(np.array([[0, 1]]))
    assert reached.all()
    assert not venv.goal_reached(np.array([[1, 0]])).any()


# --- bad input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(layout="maze"), ["layout='maze'", "room", "ring", "coordination", "random"]),
        (dict(reward_mode="team"), ["reward_mode", "individual", "shared"]),
        (dict(num_envs=0), ["num_envs", ">= 1"]),
        (dict(max_cycles=0), ["max_cycles", "[1, 1000000]"]),
        (dict(extra_actions=-1), ["extra_actions", ">= 0"]),
        (dict(layout="random", n_agents=17), ["n_agents", "[1, 16]"]),
        (dict(layout="random", width=1), ["width", "[2, 64]"]),
        (dict(layout="random", wall_density=0.9), ["wall_density", "[0, 0.45]"]),
        (dict(layout="random", width=4, height=4, n_trash=8), ["does not fit", "<= 8"]),
        (dict(layout="room", width=5), ["width", "only apply to layout='random'"]),
    ],
)
def test_bad_arguments_name_the_argument_and_valid_values(kwargs, words):
    with pytest.raises(ValueError) as error:
        trash_collection_v0.vector_env(**kwargs)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize(
    "text, words",
    [
        ("A.T\nD.\n", ["row 1 has 2 cells", "legend"]),
        ("A.T?\nD...\n", ["unknown characters ['?']", "'#' wall"]),
        ("..T\n..D\n", ["at least one agent"]),
        ("A..\n..D\n", ["at least one trash"]),
        ("colour: red\nA.T\n..D\n", ["unknown setting 'colour'"]),
        ("reward: coordination\nA.T\n..D\n", ["payoff"]),
        ("max_cycles: soon\nA.T\n..D\n", ["not a number"]),
        ("A#T\n##D\n", ["unsolvable", "x=2, y=1"]),
        ("", ["no grid rows"]),
    ],
)
def test_malformed_and_unsolvable_maps(text, words):
    with pytest.raises(ValueError) as error:
        parse_map(text, "test.txt")
    for word in words:
        assert word in str(error.value)


def test_actions_outside_the_space():
    venv = trash_collection_v0.vector_env(num_envs=2, layout="room")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"valid actions are 0..6"):
        venv.step([[0, 7], [0, 0]])
    with pytest.raises(ValueError, match="shape"):
        venv.step([0, 1])
    with pytest.raises(ValueError, match=r"valid actions are 0..5"):
        venv.goal_reached([[6, 0], [0, 0]])
    env = trash_collection_v0.parallel_env(layout="room")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"valid actions are 0..6"):
        env.step({"agent_0": -1, "agent_1": 0})


def test_stepping_a_finished_parallel_env():
    env = trash_collection_v0.parallel_env(layout="room", max_cycles=1)
    env.reset(seed=0)
    env.step({"agent_0": STAY, "agent_1": STAY})
    with pytest.raises(ValueError, match=r"finished episode.*reset"):
        env.step({"agent_0": STAY, "agent_1": STAY})


def test_the_documented_example_map_parses():
    from hmarl.envs._render import asset_path

    with open(asset_path("layouts", "README.md"), encoding="utf-8") as handle:
        example = handle.read().split("```")[1]
    layout = parse_map(example, "README example")
    assert layout.name == "two_rooms" and layout.max_cycles == 80
    assert layout.agents == [(0, 1), (10, 1)] and layout.dump_in_wall == [True]


def test_egocentric_view_is_the_full_view_cropped_around_the_agent():
    kwargs = dict(layout="random", width=9, height=7, n_agents=3, n_trash=4)
    full = trash_collection_v0.vector_env(num_envs=3, **kwargs)
    ego = trash_collection_v0.vector_env(num_envs=3, view="egocentric", view_size=5, **kwargs)
    assert ego.obs_dim == 5 * 25 + 1 and ego.observation_grid == (5, 5, 5) and ego.goal_grid is None
    full_obs, _ = full.reset(seed=1)
    ego_obs, _ = ego.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(120):
        core = full.core
        for env in range(3):
            for agent in range(3):
                padded = np.zeros((5, 7 + 4, 9 + 4), dtype=np.float32)
                padded[4] = 1.0  # beyond the grid reads as a wall
                padded[:, 2:-2, 2:-2] = full_obs["observation"][env, agent, :-1].reshape(5, 7, 9)
                x, y = core.pos[env, agent] % 9, core.pos[env, agent] // 9
                window = padded[:, y : y + 5, x : x + 5].reshape(-1)
                np.testing.assert_array_equal(ego_obs["observation"][env, agent, :-1], window)
        np.testing.assert_array_equal(ego_obs["observation"][..., -1], full_obs["observation"][..., -1])
        actions = rng.integers(0, 7, (3, 3))
        full_obs, *_ = full.step(actions)
        ego_obs, *_ = ego.step(actions)


def test_egocentric_views_of_some_copies_are_theirs_among_all():
    venv = trash_collection_v0.vector_env(
        num_envs=6, layout="random", width=9, height=5, n_agents=3, n_trash=4, view="egocentric", view_size=7
    )
    venv.reset(seed=3)
    rng = np.random.default_rng(1)
    for _ in range(40):
        venv.step(rng.integers(0, 7, (6, 3)))
        every = venv.core.observations().copy()
        some = np.array([4, 0, 2])
        np.testing.assert_array_equal(venv.core.observations(some), every[some])
        np.testing.assert_array_equal(venv.core.observations(), every)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(view="egocentric", view_size=4), "view_size=4 must be odd"),
        (dict(view="egocentric", view_size=65), r"view_size=65 is out of range; it must be in \[3, 63\]"),
        (dict(view_size=5), "view_size only applies to view='egocentric'"),
        (dict(view="cropped"), "view='cropped' is not valid"),
    ],
)
def test_bad_view_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        trash_collection_v0.vector_env(**kwargs)


def test_a_copy_whose_layout_draws_fall_short_gets_a_layout_without_walls(monkeypatch):
    # 25 items need 25 connected floor cells of a 2x26 grid: at density 0.45 few draws
    # have them, and with three draws allowed the copies run out.
    monkeypatch.setattr(generator, "MAX_DRAWS", 3)
    kwargs = {"layout": "random", "width": 2, "height": 26, "n_agents": 16, "n_trash": 8, "n_dumps": 1}
    venv = trash_collection_v0.vector_env(num_envs=32, wall_density=0.45, **kwargs)
    venv.reset(seed=0)
    walls = venv.core.walls.reshape(32, -1)
    open_grids = ~walls.any(1)
    assert open_grids.any()
    items = np.concatenate([venv.core.pos, venv.core.trash_cell, venv.core.dump_cell], 1)
    assert not np.take_along_axis(walls, items, 1).any()
    assert all(len(set(row)) == 25 for row in items.tolist())
    assert venv.core.trash_reachable.all() and venv.core.goal_feasible_dump.all()
    for _ in range(30):
        venv.step(np.full((32, 16), 4))
