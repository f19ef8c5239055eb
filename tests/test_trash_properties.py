"""Property tests of the trash-collection rules over random layouts and actions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hmarl.envs import trash_collection_v0

layouts = st.fixed_dictionaries(
    {
        "width": st.integers(2, 9),
        "height": st.integers(2, 9),
        "n_agents": st.integers(1, 16),
        "n_trash": st.integers(1, 6),
        "n_dumps": st.integers(1, 3),
        "wall_density": st.sampled_from([0.0, 0.1, 0.3, 0.45]),
        "reward_mode": st.sampled_from(["individual", "shared"]),
        "extra_actions": st.integers(0, 2),
    }
).filter(lambda k: k["n_agents"] + k["n_trash"] + k["n_dumps"] <= k["width"] * k["height"] // 2)


def check_invariants(venv) -> None:
    core = venv.core
    carried = (core.carrying >= 0).sum(1)
    dumped = (core.trash_dump >= 0).sum(1)
    on_floor = core.trash_on_floor().sum(1)
    np.testing.assert_array_equal(on_floor + carried + dumped, core.n_trash)
    np.testing.assert_array_equal(dumped, core.dumped)
    rows = np.arange(core.num_envs)[:, None]
    assert not core.walls[rows, core.pos].any(), "an agent stands in a wall"
    assert not np.isin(core.pos, core.dump_cell[:, core.dump_in_wall]).any()
    ordered = np.sort(core.pos, axis=1)
    assert not (ordered[:, 1:] == ordered[:, :-1]).any(), "two agents share a cell"
    held = np.sort(core.carrying, axis=1)
    assert not ((held[:, 1:] == held[:, :-1]) & (held[:, 1:] >= 0)).any(), "one trash held twice"
    agents_channel = core.board[:, core.n_cells : 2 * core.n_cells]
    np.testing.assert_array_equal(agents_channel.sum(1), core.n_agents)
    np.testing.assert_array_equal(agents_channel[rows, core.pos], 1.0)


@settings(max_examples=25, deadline=None)
@given(kwargs=layouts, seed=st.integers(0, 2**16), steps=st.integers(1, 60))
def test_random_play_keeps_the_invariants(kwargs, seed, steps):
    venv = trash_collection_v0.vector_env(num_envs=4, layout="random", max_cycles=25, **kwargs)
    obs, _ = venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    check_invariants(venv)
    for _ in range(steps):
        # Half the actions follow the mask (so trash moves), half are unconstrained.
        masked = np.array([[rng.choice(np.flatnonzero(row)) for row in env] for env in obs["action_mask"]])
        anything = rng.integers(0, venv.n_actions, masked.shape)
        actions = np.where(rng.random(masked.shape) < 0.5, masked, anything)
        obs, rewards, _terminated, _truncated, _infos = venv.step(actions)
        check_invariants(venv)
        assert obs["observation"].shape == (4, venv.n_agents, venv.obs_dim)
        assert ((obs["observation"] == 0) | (obs["observation"] == 1)).all()
        assert ((obs["state"] >= 0) & (obs["state"] <= 1)).all()
        assert (rewards >= 0).all()
        mask = venv.goal_mask()
        assert mask.shape == (4, venv.n_agents, len(venv.goal_names))
        goals = rng.integers(0, len(venv.goal_names), (4, venv.n_agents))
        assert venv.goal_reached(goals).dtype == bool
        assert venv.goal_encoding(goals).shape == (4, venv.n_agents, venv.goal_dim)


@settings(max_examples=15, deadline=None)
@given(kwargs=layouts, seed=st.integers(0, 2**16))
def test_generated_layouts_are_solvable(kwargs, seed):
    """Every agent can reach every trash and every dump of a generated layout."""
    venv = trash_collection_v0.vector_env(num_envs=6, layout="random", **kwargs)
    venv.reset(seed=seed)
    core = venv.core
    assert core.trash_reachable.all()
    assert core.goal_feasible_dump.all()
    assert core.walls.sum(1).max() <= core.n_cells - (core.n_agents + core.n_trash + core.n_dumps)
