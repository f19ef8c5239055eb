"""Trash-collection layouts: ASCII map files, their legend, and the tables the core steps on.

Coordinates are ``(x, y)`` with ``x`` the column (0 at the left) and ``y`` the row
counted from the **bottom** (0 at the bottom), as in the original tasks; action ``up``
moves to ``y + 1``. A map file is drawn as it looks on screen, so its first grid line
is the top row ``y = height - 1``. Cells are numbered ``y * width + x``.

Map legend (see ``assets/layouts/README.md``)::

    .   floor
    #   wall
    A   an agent's start cell
    T   a trash item on the floor
    D   a dump on the floor: agents may stand on it
    X   a dump built into a wall: agents cannot enter it and place from a 4-adjacent cell

Agents, trash and dumps are numbered in ``(y, x)`` order: bottom row first, left to
right within a row. Lines ``key: value`` set options (``name``, ``max_cycles``,
``reward`` and ``payoff``); lines starting with ``;`` are comments; blank lines are
ignored.

``reward: place`` (the default) pays an agent +0.5 for each trash it places.
``reward: coordination`` pays nothing until every trash is dumped; then each agent
receives ``payoff[d]`` if all trash lies in dump ``d``, or the last ``payoff`` value
if the trash is split over several dumps.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from hmarl.envs._base import MAX_CYCLES

FLOOR, WALL, AGENT, TRASH, DUMP, WALL_DUMP = ".", "#", "A", "T", "D", "X"
LEGEND = {
    FLOOR: "floor",
    WALL: "wall",
    AGENT: "an agent's start cell",
    TRASH: "a trash item",
    DUMP: "a dump agents may stand on",
    WALL_DUMP: "a dump built into a wall (place from a 4-adjacent cell)",
}
REWARD_RULES = ("place", "coordination")
BUILTIN_LAYOUTS = ("room", "ring", "coordination")
MAX_AGENTS = 16
#: Moves of actions 0-4 (up, down, left, right, stay) as (dx, dy).
MOVES = np.array([(0, 1), (0, -1), (-1, 0), (1, 0), (0, 0)], dtype=np.int64)
NEIGHBOURS = MOVES[:4]


@dataclass(frozen=True)
class Layout:
    """One map: its walls and where the agents, trash and dumps start."""

    name: str
    walls: np.ndarray  # (height, width) bool, indexed [y, x]
    agents: list[tuple[int, int]]
    trash: list[tuple[int, int]]
    dumps: list[tuple[int, int]]
    dump_in_wall: list[bool]
    max_cycles: int = 100
    reward: str = "place"
    payoff: list[float] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.walls.shape[0])

    @property
    def width(self) -> int:
        return int(self.walls.shape[1])

    def cells(self, points: list[tuple[int, int]]) -> np.ndarray:
        return np.array([y * self.width + x for x, y in points], dtype=np.int64)

    def to_text(self) -> str:
        """The layout as map text (settings, then rows from the top)."""
        grid = np.where(self.walls, WALL, FLOOR).astype("<U1")
        for x, y in self.agents:
            grid[y, x] = AGENT
        for x, y in self.trash:
            grid[y, x] = TRASH
        for (x, y), in_wall in zip(self.dumps, self.dump_in_wall, strict=True):
            grid[y, x] = WALL_DUMP if in_wall else DUMP
        lines = [f"name: {self.name}", f"max_cycles: {self.max_cycles}", f"reward: {self.reward}"]
        if self.payoff:
            lines.append("payoff: " + " ".join(f"{value:g}" for value in self.payoff))
        lines += ["".join(row) for row in grid[::-1]]
        return "\n".join(lines) + "\n"


def _layout_error(source: str, message: str) -> ValueError:
    legend = ", ".join(f"'{char}' {meaning}" for char, meaning in LEGEND.items())
    return ValueError(f"malformed map {source}: {message} (legend: {legend})")


def parse_map(text: str, source: str = "<text>") -> Layout:
    """Parse map text into a :class:`Layout`; raise ValueError on any malformed part."""
    settings, rows = _split_map(text, source)
    grid = _parse_grid(rows, source)
    agents, trash, dumps, in_wall = _find_pieces(grid)
    for what, items in (("agent 'A'", agents), ("trash 'T'", trash), ("dump 'D' or 'X'", dumps)):
        if not items:
            raise _layout_error(source, f"it needs at least one {what}")
    if len(agents) > MAX_AGENTS:
        raise _layout_error(source, f"it has {len(agents)} agents; at most {MAX_AGENTS} are allowed")
    reward, max_cycles, payoff = _parse_settings(settings, len(dumps), source)
    layout = Layout(
        name=settings.get("name", os.path.splitext(os.path.basename(source))[0]),
        walls=grid == WALL,
        agents=agents,
        trash=trash,
        dumps=dumps,
        dump_in_wall=in_wall,
        max_cycles=max_cycles,
        reward=reward,
        payoff=payoff,
    )
    _check_solvable(layout, source)
    return layout


def _split_map(text: str, source: str) -> tuple[dict[str, str], list[str]]:
    """The ``key: value`` settings and the grid rows of map text (comments dropped)."""
    settings: dict[str, str] = {}
    rows: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line or line.lstrip().startswith(";"):
            continue
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            if key not in ("name", "max_cycles", "reward", "payoff"):
                raise _layout_error(
                    source, f"line {number}: unknown setting {key!r}; valid settings are name, max_cycles, reward, payoff"
                )
            settings[key] = value
            continue
        rows.append(line)
    return settings, rows


def _parse_grid(rows: list[str], source: str) -> np.ndarray:
    """The grid's characters, row 0 at the bottom, after checking its shape and legend."""
    if not rows:
        raise _layout_error(source, "it has no grid rows")
    width = len(rows[0])
    for number, row in enumerate(rows):
        if len(row) != width:
            raise _layout_error(source, f"grid row {number} has {len(row)} cells but the first has {width}")
        bad = sorted(set(row) - set(LEGEND))
        if bad:
            raise _layout_error(source, f"grid row {number} has unknown characters {bad}")
    return np.array([list(row) for row in rows[::-1]])


def _find_pieces(
    grid: np.ndarray,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]], list[bool]]:
    """The agents', trash's and dumps' cells as ``(x, y)``, and whether each dump is in a wall."""
    agents, trash, dumps, in_wall = [], [], [], []
    for y in range(grid.shape[0]):
        for x in range(grid.shape[1]):
            char = grid[y, x]
            if char == AGENT:
                agents.append((x, y))
            elif char == TRASH:
                trash.append((x, y))
            elif char in (DUMP, WALL_DUMP):
                dumps.append((x, y))
                in_wall.append(bool(char == WALL_DUMP))
    return agents, trash, dumps, in_wall


def _parse_settings(settings: dict[str, str], n_dumps: int, source: str) -> tuple[str, int, list[float]]:
    """The reward rule, ``max_cycles`` and the payoff from the map's settings, checked."""
    reward = settings.get("reward", "place")
    if reward not in REWARD_RULES:
        raise _layout_error(source, f"reward: {reward!r} is not one of {list(REWARD_RULES)}")
    try:
        max_cycles = int(settings.get("max_cycles", "100"))
        payoff = [float(value) for value in settings.get("payoff", "").split()]
    except ValueError as error:
        raise _layout_error(source, f"a setting is not a number ({error})") from None
    if not 1 <= max_cycles <= MAX_CYCLES:
        raise _layout_error(source, f"max_cycles: {max_cycles} must be in [1, {MAX_CYCLES}]")
    if not all(math.isfinite(value) for value in payoff):
        raise _layout_error(source, f"payoff: {payoff} must be finite numbers (no nan or inf)")
    if reward == "coordination" and len(payoff) != n_dumps + 1:
        raise _layout_error(
            source,
            f"reward: coordination needs 'payoff:' with one value per dump and one for "
            f"a split, {n_dumps + 1} numbers; got {len(payoff)}",
        )
    return reward, max_cycles, payoff


def _check_solvable(layout: Layout, source: str) -> None:
    """Every trash must be reachable by an agent that can also reach a dump."""
    dump_cells = layout.cells(layout.dumps)[None]
    tables = StaticTables.build(layout.walls[None], dump_cells, np.array(layout.dump_in_wall)[None])
    agent_components = set(tables.component[layout.cells(layout.agents)].tolist())
    usable = {component for component in agent_components if np.any(tables.place_ok[tables.component == component])}
    for (x, y), cell in zip(layout.trash, layout.cells(layout.trash), strict=True):
        if tables.component[cell] not in usable:
            raise ValueError(
                f"unsolvable map {source}: the trash at (x={x}, y={y}) cannot be reached by "
                "an agent that can also reach a cell from which to place into a dump"
            )


def builtin_path(name: str) -> str:
    from hmarl.envs._render import asset_path

    return asset_path("layouts", f"{name}.txt")


def load_layout(layout: str) -> Layout:
    """A built-in layout by name, or a map file by path."""
    if layout in BUILTIN_LAYOUTS:
        path = builtin_path(layout)
    elif os.path.isfile(layout):
        path = layout
    else:
        raise ValueError(
            f"layout={layout!r} is not valid; choose one of {[*BUILTIN_LAYOUTS, 'random']} or give the path of a map file"
        )
    with open(path, encoding="utf-8") as handle:
        return parse_map(handle.read(), source=path)


def label_regions(blocked: np.ndarray, width: int, height: int) -> np.ndarray:
    """Connected floor regions of ``L`` grids: ``blocked`` (L, n_cells) bool in, and out
    (L, n_cells) the smallest cell index of each open cell's region (``n_cells`` on
    blocked cells)."""
    n_layouts, n_cells = blocked.shape
    cell = np.arange(n_cells)
    x, y = cell % width, cell // width
    x_to, y_to = x[:, None] + NEIGHBOURS[:, 0], y[:, None] + NEIGHBOURS[:, 1]
    inside = (x_to >= 0) & (x_to < width) & (y_to >= 0) & (y_to < height)
    neighbours = np.where(inside, y_to * width + x_to, cell[:, None])
    label = np.where(blocked, n_cells, cell[None]).astype(np.int64)
    wall_label = np.full((n_layouts, 1), n_cells)
    while True:
        spread = np.minimum(label, label[:, neighbours].min(2))
        spread[blocked] = n_cells
        # A label is a cell of the same region, so its own label is at least as small:
        # jumping along labels spreads them across long corridors in few rounds.
        spread = np.take_along_axis(np.concatenate([spread, wall_label], 1), spread, 1)
        if np.array_equal(spread, label):
            return label
        label = spread


@dataclass
class StaticTables:
    """Per-cell lookups of ``L`` layouts, flattened to ``(L * n_cells, ...)``.

    Index with ``layout * n_cells + cell``. ``next_cell`` gives the local cell after
    actions 0-4 (a blocked move stays); ``place_ok`` (.., n_dumps) whether each dump
    can be placed into from the cell; ``place_dump`` the lowest such dump or -1;
    ``component`` a label of the cell's connected floor region within its layout
    (walls get -1). ``action_mask`` holds the mask of the seven actions for every cell
    and situation: row ``(layout * n_cells + cell) * 4 + 2 * carrying + on_trash``.
    """

    next_cell: np.ndarray
    action_mask: np.ndarray
    place_ok: np.ndarray
    place_dump: np.ndarray
    component: np.ndarray

    @classmethod
    def build(cls, walls: np.ndarray, dump_cells: np.ndarray, dump_in_wall: np.ndarray) -> StaticTables:
        """Tables of ``L`` layouts: ``walls`` (L, H, W) bool, ``dump_cells`` (L, D)
        cell indices and ``dump_in_wall`` (L, D) bool."""
        n_layouts, height, width = walls.shape
        n_cells = height * width
        blocked = walls.reshape(n_layouts, n_cells).copy()
        rows = np.arange(n_layouts)[:, None]
        blocked[rows, dump_cells] |= dump_in_wall
        xs, ys = np.meshgrid(np.arange(width), np.arange(height))
        cell = (ys * width + xs).ravel()
        x_to = xs.ravel()[:, None] + MOVES[:, 0]
        y_to = ys.ravel()[:, None] + MOVES[:, 1]
        inside = (x_to >= 0) & (x_to < width) & (y_to >= 0) & (y_to < height)
        target = np.where(inside, y_to * width + x_to, cell[:, None])
        next_cell = np.where(blocked[:, target], cell[None, :, None], target[None])

        dump_x, dump_y = dump_cells % width, dump_cells // width
        cell_x, cell_y = xs.ravel(), ys.ravel()
        distance = np.abs(cell_x[None, :, None] - dump_x[:, None, :]) + np.abs(cell_y[None, :, None] - dump_y[:, None, :])
        place_ok = (distance <= 1) & ~blocked[:, :, None]
        place_dump = np.where(place_ok.any(2), place_ok.argmax(2), -1)

        action_mask = np.zeros((n_layouts, n_cells, 2, 2, 7), dtype=np.int8)
        action_mask[..., :4] = next_cell[:, :, None, None, :4] != cell[None, :, None, None, None]
        action_mask[..., 4] = 1
        action_mask[:, :, 0, 1, 5] = 1
        action_mask[:, :, 1, :, 6] = (place_dump >= 0)[:, :, None]

        label = label_regions(blocked, width, height)
        component = np.where(blocked, -1, label)
        return cls(
            next_cell=next_cell.reshape(n_layouts * n_cells, 5),
            action_mask=action_mask.reshape(n_layouts * n_cells * 4, 7),
            place_ok=place_ok.reshape(n_layouts * n_cells, -1),
            place_dump=place_dump.reshape(-1),
            component=component.reshape(-1),
        )
