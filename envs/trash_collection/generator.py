"""Procedural trash-collection layouts, drawn for many copies at once.

Each cell becomes a wall with probability ``wall_density``; only the largest connected
floor region is kept (every other floor cell becomes a wall), so every agent can reach
every trash item and every dump: a generated layout is always solvable. A draw whose
region is too small for the items is drawn again; a copy whose draws all fall short
(a crowded grid with dense walls, e.g. 25 items on 2x26 at density 0.44) gets a layout
without walls after ``MAX_DRAWS`` of them, so that a reset never fails. Agents, trash and
dumps (dumps agents may stand on) then take distinct random cells of that region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmarl.envs.trash_collection.layouts import label_regions

MAX_WALL_DENSITY = 0.45
MAX_DRAWS = 1000


@dataclass(frozen=True)
class RandomLayoutSpec:
    """The parameters of ``layout="random"``."""

    width: int = 11
    height: int = 11
    n_agents: int = 2
    n_trash: int = 4
    n_dumps: int = 2
    wall_density: float = 0.2

    @property
    def n_items(self) -> int:
        return self.n_agents + self.n_trash + self.n_dumps


def generate(
    spec: RandomLayoutSpec, rng: np.random.Generator, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``count`` layouts: walls (count, height, width) bool and the cells of the
    agents (count, n_agents), trash (count, n_trash) and dumps (count, n_dumps)."""
    n_cells = spec.width * spec.height
    blocked = np.empty((count, n_cells), dtype=bool)
    pending = np.arange(count)
    for _ in range(MAX_DRAWS):
        walls = rng.random((len(pending), n_cells)) < spec.wall_density
        label = label_regions(walls, spec.width, spec.height)
        offset = np.arange(len(pending))[:, None] * (n_cells + 1)
        sizes = np.bincount((label + offset).ravel(), minlength=len(pending) * (n_cells + 1))
        sizes = sizes.reshape(len(pending), n_cells + 1)[:, :n_cells]
        largest = sizes.argmax(1)
        blocked[pending] = label != largest[:, None]
        big_enough = sizes.max(1) >= spec.n_items
        pending = pending[~big_enough]
        if pending.size == 0:
            break
    # The constructor checks that the items fit half the cells, so an open grid holds them.
    blocked[pending] = False
    keys = rng.random((count, n_cells)) + blocked
    cells = np.argsort(keys, axis=1, kind="stable")[:, : spec.n_items]
    agents = cells[:, : spec.n_agents]
    trash = cells[:, spec.n_agents : spec.n_agents + spec.n_trash]
    dumps = cells[:, spec.n_agents + spec.n_trash :]
    return blocked.reshape(count, spec.height, spec.width), agents, trash, dumps
