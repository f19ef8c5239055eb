"""Rendering of ``trash_collection_v0`` (headless) and the GIF helper."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hmarl.envs import trash_collection_v0
from hmarl.envs._render import save_gif
from hmarl.envs.trash_collection.planner import ShortestPathPlanner
from hmarl.envs.trash_collection.render import CELL, HEADER


@pytest.mark.parametrize("layout, size", [("room", (11, 11)), ("coordination", (15, 7))])
def test_rgb_array_frames(layout, size):
    env = trash_collection_v0.parallel_env(layout=layout, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    width, height = size
    assert frame.shape == (height * CELL + HEADER, width * CELL, 3) and frame.dtype == np.uint8
    env.step({agent: 0 for agent in env.agents})
    assert not np.array_equal(env.render(), frame), "the frame shows moves and the step counter"
    env.close()


def test_human_mode_returns_nothing():
    env = trash_collection_v0.parallel_env(layout="ring", render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    env.close()


def test_vector_env_renders_any_copy_and_rejects_bad_indices():
    venv = trash_collection_v0.vector_env(num_envs=3, layout="random", render_mode="rgb_array")
    venv.reset(seed=0)
    frames = [venv.render(index) for index in range(3)]
    assert not np.array_equal(frames[0], frames[1]), "random copies have their own layouts"
    with pytest.raises(ValueError, match="index=3"):
        venv.render(3)
    venv.close()


def test_save_gif_of_a_rollout(tmp_path):
    venv = trash_collection_v0.vector_env(layout="coordination", render_mode="rgb_array")
    venv.reset(seed=0)
    planner = ShortestPathPlanner(venv.core)
    frames = [venv.render()]
    for _ in range(5):
        venv.step(planner.act())
        frames.append(venv.render())
    path = tmp_path / "rollout.gif"
    save_gif(frames, str(path), fps=5)
    with Image.open(path) as image:
        assert image.n_frames == 6 and image.size == frames[0].shape[1::-1]
    with pytest.raises(ValueError, match="at least one frame"):
        save_gif([], str(path))
