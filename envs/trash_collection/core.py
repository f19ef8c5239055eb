"""The rules of multi-agent trash collection for ``num_envs`` copies at once.

The rules, spaces, rewards and options are documented in the module docstring of
:mod:`hmarl.envs.trash_collection_v0` (rendered as the environment's docs page).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hmarl.envs._base import MAX_CYCLES, BatchedCore, CoreState, check_choice, check_int
from hmarl.envs.trash_collection.generator import MAX_WALL_DENSITY, RandomLayoutSpec, generate
from hmarl.envs.trash_collection.layouts import MAX_AGENTS, Layout, StaticTables, load_layout

ACTION_NAMES = ("up", "down", "left", "right", "stay", "pick", "place")
STAY, PICK, PLACE = 4, 5, 6
SELF_CHANNEL, AGENTS_CHANNEL, TRASH_CHANNEL, DUMPS_CHANNEL, WALLS_CHANNEL = range(5)
PLACE_REWARD = 0.5
REWARD_MODES = ("individual", "shared")
RANDOM_DEFAULT_MAX_CYCLES = 100
GOAL_KINDS = ("dump", "trash", "pick", "place")
VIEWS = ("full", "egocentric")
DEFAULT_VIEW_SIZE = 11
_RANDOM_KWARGS = ("width", "height", "n_agents", "n_trash", "n_dumps", "wall_density")


def _random_spec(kwargs: dict[str, Any]) -> RandomLayoutSpec:
    defaults = RandomLayoutSpec()
    spec = {name: getattr(defaults, name) if kwargs[name] is None else kwargs[name] for name in _RANDOM_KWARGS}
    for name in ("width", "height"):
        check_int(name, spec[name], 2, 64)
    check_int("n_agents", spec["n_agents"], 1, MAX_AGENTS)
    check_int("n_trash", spec["n_trash"], 1)
    check_int("n_dumps", spec["n_dumps"], 1)
    density = spec["wall_density"]
    if isinstance(density, bool) or not isinstance(density, (int, float, np.floating, np.integer)):
        raise TypeError(f"wall_density must be a number, got {type(density).__name__} {density!r}")
    if not 0.0 <= density <= MAX_WALL_DENSITY:
        raise ValueError(f"wall_density={density} is out of range; it must be in [0, {MAX_WALL_DENSITY}]")
    result = RandomLayoutSpec(**{**spec, "wall_density": float(density)})
    capacity = result.width * result.height // 2
    if result.n_items > capacity:
        raise ValueError(
            f"n_agents + n_trash + n_dumps = {result.n_items} does not fit a "
            f"{result.width}x{result.height} random layout; it must be <= {capacity} "
            "(half the cells)"
        )
    return result


@dataclasses.dataclass
class TrashState(CoreState):
    """Per copy: agents' cells and carried trash (-1: none), trash cells and the dump each
    trash went into (-1: not yet), dump cells, trash dumped so far, the trash index on
    each cell (-1: none), the observation board shared by all agents (kept up to date
    step by step), and which dumps and trash each agent can reach this episode. With
    ``layout="random"`` also the layout and its tables (``None`` for a fixed map)."""

    pos: np.ndarray
    carrying: np.ndarray
    trash_cell: np.ndarray
    trash_dump: np.ndarray
    dump_cell: np.ndarray
    dumped: np.ndarray
    trash_map: np.ndarray
    board: np.ndarray
    goal_feasible_dump: np.ndarray
    trash_reachable: np.ndarray
    layout_walls: np.ndarray | None
    layout_next_cell: np.ndarray | None
    layout_action_mask: np.ndarray | None
    layout_place_ok: np.ndarray | None
    layout_place_dump: np.ndarray | None
    layout_component: np.ndarray | None


def _layout_field(array: np.ndarray | None) -> np.ndarray:
    """A per-copy layout field of a random layout's state (``None`` only for fixed maps)."""
    if array is None:
        raise TypeError("a fixed map's state keeps no per-copy layout; only random layouts do")
    return array


class TrashCollectionCore(BatchedCore):
    """Multi-agent trash collection (Tang et al.'s MATC tasks and procedural layouts).

    Arguments
    ---------
    ``layout``
        ``"room"``, ``"ring"``, ``"coordination"``, ``"random"`` or the path of an
        ASCII map file.
    ``reward_mode``
        ``"individual"`` (each agent its own rewards) or ``"shared"`` (every agent the
        sum of all agents' rewards).
    ``max_cycles``
        the truncation limit in steps; by default the layout's: 100 for ``room``, 100
        for ``ring``, 50 for ``coordination``, 100 for ``random``.
    ``extra_actions``
        ``>= 0`` actions appended to the action space that never do anything.
    ``width``
        ``layout="random"`` only: grid width, 2-64 (default 11).
    ``height``
        ``layout="random"`` only: grid height, 2-64 (default 11).
    ``n_agents``
        ``layout="random"`` only: agents, 1-16 (default 2).
    ``n_trash``
        ``layout="random"`` only: trash items, >= 1 (default 4).
    ``n_dumps``
        ``layout="random"`` only: dumps, >= 1 (default 2).
    ``wall_density``
        ``layout="random"`` only: share of wall cells, 0-0.45 (default 0.2).
    ``view``
        ``"full"`` (the whole grid) or ``"egocentric"`` (a window centred on the agent).
    ``view_size``
        the egocentric window's odd side, 3-63 (default 11); only with
        ``view="egocentric"``.
    """

    name = "trash_collection_v0"
    state_type = TrashState
    state: TrashState
    # State fields read as attributes (properties made by BatchedCore.__init_subclass__).
    pos: np.ndarray
    board: np.ndarray
    carrying: np.ndarray
    dump_cell: np.ndarray
    dumped: np.ndarray
    goal_feasible_dump: np.ndarray
    trash_cell: np.ndarray
    trash_dump: np.ndarray
    trash_reachable: np.ndarray
    render_fps = 8
    episode_stat_names = ("trash_collected", "success")

    def __init__(
        self,
        num_envs: int = 1,
        layout: str = "room",
        reward_mode: str = "individual",
        max_cycles: int | None = None,
        extra_actions: int = 0,
        width: int | None = None,
        height: int | None = None,
        n_agents: int | None = None,
        n_trash: int | None = None,
        n_dumps: int | None = None,
        wall_density: float | None = None,
        view: str = "full",
        view_size: int | None = None,
    ) -> None:
        super().__init__(num_envs)
        if not isinstance(layout, str):
            raise TypeError(f"layout must be a layout name or a map path, got {type(layout).__name__}")
        check_choice("reward_mode", reward_mode, REWARD_MODES)
        check_choice("view", view, VIEWS)
        if view_size is not None and view != "egocentric":
            raise ValueError(f"view_size only applies to view='egocentric', not view={view!r}")
        self.view = view
        self.view_size = check_int("view_size", DEFAULT_VIEW_SIZE if view_size is None else view_size, 3, 63)
        if self.view_size % 2 == 0:
            raise ValueError(f"view_size={self.view_size} must be odd, so that the agent is at the centre")
        self.extra_actions = check_int("extra_actions", extra_actions, 0)
        random_kwargs = dict(
            width=width,
            height=height,
            n_agents=n_agents,
            n_trash=n_trash,
            n_dumps=n_dumps,
            wall_density=wall_density,
        )
        self.random_spec: RandomLayoutSpec | None = None
        self.layout: Layout | None = None
        if layout == "random":
            self.random_spec = spec = _random_spec(random_kwargs)
            self.layout_name = "random"
            self.width, self.height = spec.width, spec.height
            self.n_agents, self.n_trash, self.n_dumps = spec.n_agents, spec.n_trash, spec.n_dumps
            self.reward_rule, self.payoff = "place", np.zeros(0, dtype=np.float32)
            default_cycles = RANDOM_DEFAULT_MAX_CYCLES
            self.dump_in_wall = np.zeros(spec.n_dumps, dtype=bool)
        else:
            given = [name for name, value in random_kwargs.items() if value is not None]
            if given:
                raise ValueError(f"{', '.join(given)} only apply to layout='random', not layout={layout!r}")
            self.layout = fixed = load_layout(layout)
            self.layout_name = fixed.name
            self.width, self.height = fixed.width, fixed.height
            self.n_agents, self.n_trash = len(fixed.agents), len(fixed.trash)
            self.n_dumps = len(fixed.dumps)
            self.reward_rule, self.payoff = fixed.reward, np.array(fixed.payoff, dtype=np.float32)
            default_cycles = fixed.max_cycles
            self.dump_in_wall = np.array(fixed.dump_in_wall, dtype=bool)
        self.max_cycles = check_int("max_cycles", default_cycles if max_cycles is None else max_cycles, 1, MAX_CYCLES)
        self.shared_reward = reward_mode == "shared"

        n_cells = self.n_cells = self.width * self.height
        self.n_actions = len(ACTION_NAMES) + self.extra_actions
        self.board_dim = 5 * n_cells + 1
        if view == "egocentric":
            self._build_window()
        else:
            self.obs_dim = self.board_dim
            self.observation_grid = (5, self.height, self.width)
        self.state_dim = (self.n_agents + 3) * n_cells + self.n_agents + 1
        self.goal_names = (
            [f"goto_dump_{d}" for d in range(self.n_dumps)]
            + [f"goto_trash_{t}" for t in range(self.n_trash)]
            + ["pick", "place"]
        )
        self.goal_dim = n_cells + len(GOAL_KINDS)
        self.goal_grid = (1, self.height, self.width) if view == "full" else None
        self._pick_goal = self.n_dumps + self.n_trash

        envs, agents = self.num_envs, self.n_agents
        self._env_rows = np.arange(envs)[:, None]
        self._cell_base = self._env_rows * n_cells
        self._board_base = self._env_rows * self.board_dim + AGENTS_CHANNEL * n_cells
        self._obs_base = np.arange(envs * agents).reshape(envs, agents) * self.obs_dim
        self._state_base = self._env_rows * self.state_dim + np.arange(agents) * n_cells
        self._not_self = ~np.eye(agents, dtype=bool)
        # Stand-in targets of agents that stay: negative, so they never meet a real cell.
        self._no_claim = -1 - np.arange(agents)[:, None]

        if self.layout is not None:
            fixed = self.layout
            self._layout_base = np.zeros((envs, 1), dtype=np.int64)
            self.walls = np.broadcast_to(fixed.walls.reshape(1, n_cells), (envs, n_cells))
            self.tables = StaticTables.build(fixed.walls[None], fixed.cells(fixed.dumps)[None], self.dump_in_wall[None])
            # Every episode of a fixed map starts alike: one copy's state stands for all.
            self._template = self._start_state(
                fixed.cells(fixed.agents)[None],
                fixed.cells(fixed.trash)[None],
                fixed.cells(fixed.dumps)[None],
                fixed.walls.reshape(1, n_cells),
                self.tables,
                None,
            )
        else:
            self._layout_base = self._cell_base
        self.state = (
            self._start_state(*self._empty_layouts(envs))
            if self.layout is None
            else (self._template.take(np.zeros(envs, dtype=np.int64)))
        )
        # Views of the state's arrays, which are only ever written in place.
        self.trash_at = self.state.trash_map.reshape(-1)
        if self.layout is None:
            self.walls = _layout_field(self.state.layout_walls)
            self.tables = self._layout_tables(self.state)
        self._next_flat = self.tables.next_cell.reshape(-1)
        self.reset_copies(slice(None))

    def _empty_layouts(self, count: int) -> tuple[Any, ...]:
        n_cells = self.n_cells
        zeros = np.zeros((count, self.n_agents), dtype=np.int64)
        tables = StaticTables(
            next_cell=np.zeros((count * n_cells, 5), dtype=np.int64),
            action_mask=np.zeros((count * n_cells * 4, len(ACTION_NAMES)), dtype=np.int8),
            place_ok=np.zeros((count * n_cells, self.n_dumps), dtype=bool),
            place_dump=np.full(count * n_cells, -1, dtype=np.int64),
            component=np.full(count * n_cells, -1, dtype=np.int64),
        )
        return (
            zeros,
            np.zeros((count, self.n_trash), dtype=np.int64),
            np.zeros((count, self.n_dumps), dtype=np.int64),
            np.zeros((count, n_cells), dtype=bool),
            tables,
            tables,
        )

    def _layout_tables(self, state: TrashState) -> StaticTables:
        """The per-copy tables of random layouts as flat views of ``state``'s arrays."""
        return StaticTables(
            next_cell=_layout_field(state.layout_next_cell).reshape(-1, 5),
            action_mask=_layout_field(state.layout_action_mask).reshape(-1, len(ACTION_NAMES)),
            place_ok=_layout_field(state.layout_place_ok).reshape(-1, self.n_dumps),
            place_dump=_layout_field(state.layout_place_dump).reshape(-1),
            component=_layout_field(state.layout_component).reshape(-1),
        )

    def table_rows(self, env: int) -> np.ndarray:
        """Rows of ``self.tables`` that describe the cells of copy ``env``'s layout."""
        return self._layout_base[env, 0] + np.arange(self.n_cells)

    # --- episodes ----------------------------------------------------------------
    def fresh_state(self, count: int) -> TrashState:
        if self.layout is not None:
            return self._template
        if self.random_spec is None:
            raise TypeError("a core without a fixed layout needs a random layout specification")
        walls, agents, trash, dumps = generate(self.random_spec, self.rng, count)
        tables = StaticTables.build(walls, dumps, np.zeros_like(dumps, dtype=bool))
        return self._start_state(agents, trash, dumps, walls.reshape(count, self.n_cells), tables, tables)

    def _start_state(
        self,
        pos: np.ndarray,
        trash_cell: np.ndarray,
        dump_cell: np.ndarray,
        walls: np.ndarray,
        tables: StaticTables,
        own_tables: StaticTables | None,
    ) -> TrashState:
        """The state of ``len(pos)`` episodes starting on the given layouts, whose tables
        are ``tables``; ``own_tables`` become part of the state (random layouts)."""
        count, n_cells = len(pos), self.n_cells
        rows = np.arange(count)[:, None]
        trash_map = np.full((count, n_cells), -1, dtype=np.int64)
        trash_map[rows, trash_cell] = np.arange(self.n_trash)
        channels = np.zeros((count, 5, n_cells), dtype=np.float32)
        channels[rows, AGENTS_CHANNEL, pos] = 1.0
        channels[rows, TRASH_CHANNEL, trash_cell] = 1.0
        channels[rows, DUMPS_CHANNEL, dump_cell] = 1.0
        channels[:, WALLS_CHANNEL] = walls
        board = np.zeros((count, self.board_dim), dtype=np.float32)
        board[:, :-1] = channels.reshape(count, -1)
        # Reachability: the floor regions of the agents, the trash and every cell.
        component = tables.component.reshape(-1, n_cells)
        place_ok = tables.place_ok.reshape(-1, n_cells, self.n_dumps)
        local = rows if len(component) == count else np.zeros_like(rows)
        agent_region = component[local, pos]
        trash_region = component[local, trash_cell]
        same_region = (component[local[:, 0], None, :] == agent_region[:, :, None]).astype(np.int32)
        reachable_dump = np.matmul(same_region, place_ok[local[:, 0]].astype(np.int32)) > 0
        layout: tuple[np.ndarray | None, ...] = (None,) * 6
        if own_tables is not None:
            layout = (
                walls.copy(),
                own_tables.next_cell.reshape(count, n_cells, 5),
                own_tables.action_mask.reshape(count, n_cells * 4, -1),
                own_tables.place_ok.reshape(count, n_cells, -1),
                own_tables.place_dump.reshape(count, n_cells),
                own_tables.component.reshape(count, n_cells),
            )
        return TrashState(
            np.zeros(count, dtype=np.int64),
            pos.astype(np.int64, copy=True),
            np.full((count, self.n_agents), -1, dtype=np.int64),
            trash_cell.astype(np.int64, copy=True),
            np.full((count, self.n_trash), -1, dtype=np.int64),
            dump_cell.astype(np.int64, copy=True),
            np.zeros(count, dtype=np.int64),
            trash_map,
            board,
            reachable_dump,
            agent_region[:, :, None] == trash_region[:, None, :],
            *layout,
        )

    # --- rules -------------------------------------------------------------------
    def _resolve_moves(self, target: np.ndarray) -> np.ndarray:
        """Final positions when every agent tries to go to ``target`` (see the module doc).

        Pairwise relations are built agent-major, ``(n_agents, n_agents, num_envs)``, so
        that numpy's inner loops run over the copies rather than over two agents.
        ``count_nonzero`` and ``logical_or.reduce`` stand in for ``any``: on the one-copy
        arrays of the PettingZoo face the wrapper around ``any`` costs more than the work.
        """
        moving_any = target != self.pos
        if self.n_agents == 1 or not np.count_nonzero(moving_any):
            return target
        goal, pos = np.ascontiguousarray(target.T), np.ascontiguousarray(self.pos.T)
        moving = np.ascontiguousarray(moving_any.T)
        not_self = self._not_self[:, :, None]
        claim = np.where(moving, goal, self._no_claim)
        same = claim[:, None] == claim[None]
        # Every agent matches itself; more matches than agents means a contested cell.
        if np.count_nonzero(same) > same.size // self.n_agents:
            contested = same & not_self
            priority = self.rng.random(self.pos.shape).T
            outranked = contested & (priority[:, None] > priority[None])
            moving &= ~np.logical_or.reduce(outranked, axis=0)
        heading = np.where(moving, goal, pos)
        into = heading[:, None] == pos[None]
        moving &= ~np.logical_or.reduce(into & into.transpose(1, 0, 2), axis=1)
        while True:
            final = np.where(moving, goal, pos)
            clash = np.logical_or.reduce((final[:, None] == final[None]) & not_self, axis=1)
            clash &= moving
            if not np.count_nonzero(clash):
                return np.ascontiguousarray(final.T)
            moving &= ~clash

    def step_rules(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_cells = self.n_cells
        old = self.pos
        layout_cell = old + self._layout_base
        # ``take``/``put`` with flat indices skip fancy indexing's per-call setup.
        target = self._next_flat.take(layout_cell * 5 + np.minimum(actions, STAY))
        new = self._resolve_moves(target)
        board = self.board.reshape(-1)
        board.put(old + self._board_base, 0.0)
        board.put(new + self._board_base, 1.0)
        self.pos = new

        # Pick and place leave the agent where it stood, so ``old`` is its cell.
        carrying = self.carrying
        holding = carrying >= 0
        trash_here = self.trash_at.take(old + self._cell_base)
        picked = (actions == PICK) & ~holding & (trash_here >= 0)
        dump_here = self.tables.place_dump.take(layout_cell)
        placed = (actions == PLACE) & holding & (dump_here >= 0)
        if np.count_nonzero(picked):
            env, agent = np.nonzero(picked)
            cell = old[env, agent]
            carrying[env, agent] = trash_here[env, agent]
            self.trash_at[env * n_cells + cell] = -1
            board[env * self.board_dim + TRASH_CHANNEL * n_cells + cell] = 0.0
        rewards = np.zeros(actions.shape, dtype=np.float32)
        if np.count_nonzero(placed):
            env, agent = np.nonzero(placed)
            self.trash_dump[env, carrying[env, agent]] = dump_here[env, agent]
            carrying[env, agent] = -1
            self.dumped += placed.sum(1)
            if self.reward_rule == "place":
                rewards[placed] = PLACE_REWARD
        terminated = self.dumped == self.n_trash
        if self.reward_rule == "coordination" and np.count_nonzero(terminated):
            dumps = self.trash_dump[terminated]
            together = (dumps == dumps[:, :1]).all(1)
            payoff = np.where(together, self.payoff[dumps[:, 0]], self.payoff[-1])
            rewards[terminated] = payoff[:, None]
        if self.shared_reward:
            rewards[:] = rewards.sum(1, keepdims=True)
        valid = (new != old) | (actions == STAY) | picked | placed
        return rewards, terminated, ~valid

    # --- views -------------------------------------------------------------------
    def _build_window(self) -> None:
        """The egocentric window's buffers: the board as one byte per cell (bit ``c`` set
        where channel ``c`` is) with a border of ``view_size // 2`` wall cells on every
        side (cells beyond the grid read as walls), and a view of every ``view_size``
        square of it, so that a window is one gather of a copy's row, column and square,
        whatever the grid's size. Bytes rather than five float channels: the gather's cost
        is its rows, five times fewer."""
        size = self.view_size
        self.obs_dim = 5 * size * size + 1
        self.observation_grid = (5, size, size)
        radius = size // 2
        self._padded = np.full(
            (self.num_envs, self.height + 2 * radius, self.width + 2 * radius), 1 << WALLS_CHANNEL, dtype=np.uint8
        )
        # Window rows run in the grid's cell order (y then x, y counted from the bottom),
        # as the padded board's rows do: the window of cell (x, y) starts at (x, y).
        self._windows = np.lib.stride_tricks.sliding_window_view(self._padded, (size, size), axis=(1, 2))
        self._cell_yx = np.divmod(np.arange(self.n_cells), self.width)
        self._channel_bits = (1 << np.arange(5)).astype(np.float32)
        centre = size * size // 2
        self._window_self = SELF_CHANNEL * size * size + centre
        self._window_centre_agents = AGENTS_CHANNEL * size * size + centre

    def _egocentric(self, idx: np.ndarray | slice, out: np.ndarray | None) -> np.ndarray:
        board, pos = self.board[idx], self.pos[idx]
        count, size, radius = len(board), self.view_size, self.view_size // 2
        if out is None:
            out = np.empty((count, self.n_agents, self.obs_dim), dtype=np.float32)
        # The board's channels hold 0 or 1, so the weighted sum is the cell's bits.
        cells = np.matmul(self._channel_bits, board[:, :-1].reshape(count, 5, self.n_cells))
        inner = self._padded[:count, radius : radius + self.height, radius : radius + self.width]
        inner[...] = cells.reshape(count, self.height, self.width)
        y, x = self._cell_yx[0][pos], self._cell_yx[1][pos]
        codes = self._windows[self._env_rows[:count], y, x]
        window = out[:, :, :-1]
        channels = window.reshape(count, self.n_agents, 5, size, size)
        for channel in range(5):
            np.bitwise_and(np.right_shift(codes, channel), 1, out=channels[:, :, channel], casting="unsafe")
        # The agent's own cell is the centre: it moves from the agents channel to "self"
        # (the board's self channel is empty).
        window[:, :, self._window_self] = 1.0
        window[:, :, self._window_centre_agents] = 0.0
        out[:, :, -1] = self.carrying[idx] >= 0
        return out

    def observations(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        if self.view == "egocentric":
            return self._egocentric(idx, out)
        n_cells = self.n_cells
        board, pos = self.board[idx], self.pos[idx]
        if out is None:
            out = np.empty((len(board), self.n_agents, self.obs_dim), dtype=np.float32)
        out[:] = board[:, None, :]
        out[:, :, -1] = self.carrying[idx] >= 0
        # The board's agents channel holds everyone: move each agent to its "self" channel.
        row = self._obs_base[: len(board)] + pos
        flat = out.reshape(-1)
        flat.put(row + SELF_CHANNEL * n_cells, 1.0)
        flat.put(row + AGENTS_CHANNEL * n_cells, 0.0)
        return out

    def action_masks(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        pos = self.pos[idx]
        holding = self.carrying[idx] >= 0
        on_trash = self.trash_at.take(pos + self._cell_base[idx]) >= 0
        situation = (pos + self._layout_base[idx]) * 4 + 2 * holding + on_trash
        if self.extra_actions == 0:
            return self.tables.action_mask.take(situation, axis=0, out=out)
        if out is None:
            out = np.empty((len(pos), self.n_agents, self.n_actions), dtype=np.int8)
        out[:, :, len(ACTION_NAMES) :] = 0
        out[:, :, : len(ACTION_NAMES)] = self.tables.action_mask.take(situation, axis=0)
        return out

    def states(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        n_cells, n_agents = self.n_cells, self.n_agents
        board, pos = self.board[idx], self.pos[idx]
        count = len(board)
        agents_end = n_agents * n_cells
        state = np.empty((count, self.state_dim), dtype=np.float32) if out is None else out
        state[:, :agents_end] = 0.0
        state[:, agents_end : agents_end + 3 * n_cells] = board[:, TRASH_CHANNEL * n_cells : -1]
        state[:, agents_end + 3 * n_cells : -1] = self.carrying[idx] >= 0
        state[:, -1] = (self.max_cycles - self.t[idx]) / self.max_cycles
        state.reshape(-1)[self._state_base[:count] + pos] = 1.0
        return state

    def episode_stats(self, idx: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        dumped = self.dumped[idx]
        return {"trash_collected": dumped, "success": dumped == self.n_trash}

    def observation_bounds(self) -> tuple[float, float]:
        return 0.0, 1.0

    def state_bounds(self) -> tuple[float, float]:
        return 0.0, 1.0

    # --- options -----------------------------------------------------------------
    def _goal_parts(self, goals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dump and trash indices of ``goals`` (clipped where the goal is another kind)
        and the goal kind (index into ``GOAL_KINDS``)."""
        dump = np.minimum(goals, self.n_dumps - 1)
        trash = np.clip(goals - self.n_dumps, 0, self.n_trash - 1)
        kind = np.select([goals < self.n_dumps, goals < self._pick_goal, goals == self._pick_goal], [0, 1, 2], 3)
        return dump, trash, kind

    def trash_on_floor(self) -> np.ndarray:
        """Whether each trash still lies on the floor, ``(num_envs, n_trash)`` bool."""
        lying = np.take_along_axis(self.trash_at.reshape(self.num_envs, -1), self.trash_cell, 1)
        return lying == np.arange(self.n_trash)

    def goal_mask(self) -> np.ndarray:
        masks = self.action_masks() > 0
        return np.concatenate(
            [
                self.goal_feasible_dump,
                self.trash_reachable & self.trash_on_floor()[:, None, :],
                masks[:, :, PICK : PLACE + 1],
            ],
            axis=2,
        )

    def goal_reached(self, goals: np.ndarray) -> np.ndarray:
        dump, trash, kind = self._goal_parts(goals)
        holding = self.carrying >= 0
        local = self.pos + self._layout_base
        at_dump = self.tables.place_ok[local, dump]
        at_trash = self.pos == np.take_along_axis(self.trash_cell, trash, 1)
        return np.choose(kind, [at_dump, at_trash, holding, ~holding])

    def goal_encoding(self, goals: np.ndarray) -> np.ndarray:
        dump, trash, kind = self._goal_parts(goals)
        n_cells = self.n_cells
        cell = np.where(
            kind == 0,
            np.take_along_axis(self.dump_cell, dump, 1),
            np.take_along_axis(self.trash_cell, trash, 1),
        )
        encoding = np.zeros((self.num_envs, self.n_agents, self.goal_dim), dtype=np.float32)
        env, agent = np.nonzero(kind <= 1)
        encoding[env, agent, cell[env, agent]] = 1.0
        encoding[self._env_rows, np.arange(self.n_agents), n_cells + kind] = 1.0
        return encoding

    def goal_primitive(self, goals: np.ndarray) -> np.ndarray:
        kinds = [goals == self._pick_goal, goals == self._pick_goal + 1]
        return np.select(kinds, [PICK, PLACE], -1)

    # --- rendering ---------------------------------------------------------------
    def render_size(self) -> tuple[int, int]:
        from hmarl.envs.trash_collection import render

        return render.frame_size(self.width, self.height)

    def draw(self, surface: Any, index: int, episode_return: float) -> None:
        from hmarl.envs.trash_collection import render

        render.draw(self, surface, index, episode_return)
