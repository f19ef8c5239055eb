"""A scripted trash-collection policy that plans shortest paths.

Each agent either carries trash, and walks to the nearest cell from which it can place
into the best dump it can reach (the highest-paying one in a coordination layout, any
dump otherwise), or walks to the nearest trash no other agent has claimed and picks it
up. Paths come from breadth-first search on the grid with the other agents' cells and
the cells earlier agents plan to enter counted as blocked, so the planner never causes
a collision; when no such path exists it ignores the other agents, and when even that
move is blocked it steps aside at random. It reaches the optimal return of the
built-in layouts: room 1.0, ring 4.0, coordination 2.0.

This is a reference policy for tests, demonstrations and sanity checks, not part of
the environment's hot path: it loops over copies and agents in Python.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from hmarl.envs.trash_collection.core import PICK, PLACE, STAY, TrashCollectionCore
from hmarl.envs.trash_collection.layouts import MOVES


class ShortestPathPlanner:
    """Actions for every copy and agent of ``core``: call :meth:`act` once per step."""

    def __init__(self, core: TrashCollectionCore, seed: int = 0) -> None:
        self.core = core
        self.rng = np.random.default_rng(seed)

    def _blocked(self, env: int) -> np.ndarray:
        core = self.core
        blocked = core.walls[env].copy()
        blocked[core.dump_cell[env][core.dump_in_wall]] = True
        return blocked

    def _distances(self, blocked: np.ndarray, sources: list[int]) -> np.ndarray:
        """Steps from every cell to the nearest of ``sources`` (-1: unreachable)."""
        core = self.core
        distance = np.full(core.n_cells, -1, dtype=np.int64)
        queue: deque[int] = deque()
        for cell in sources:
            if not blocked[cell] and distance[cell] < 0:
                distance[cell] = 0
                queue.append(cell)
        while queue:
            cell = queue.popleft()
            x, y = cell % core.width, cell // core.width
            for dx, dy in MOVES[:4]:
                nx, ny = x + dx, y + dy
                if 0 <= nx < core.width and 0 <= ny < core.height:
                    neighbour = ny * core.width + nx
                    if not blocked[neighbour] and distance[neighbour] < 0:
                        distance[neighbour] = distance[cell] + 1
                        queue.append(neighbour)
        return distance

    def _step_towards(self, cell: int, distance: np.ndarray, blocked: np.ndarray) -> int | None:
        """The move (0-3) one step closer along ``distance``, or None."""
        core = self.core
        x, y = cell % core.width, cell // core.width
        best, best_distance = None, distance[cell]
        for action, (dx, dy) in enumerate(MOVES[:4]):
            nx, ny = x + dx, y + dy
            if 0 <= nx < core.width and 0 <= ny < core.height:
                neighbour = ny * core.width + nx
                if not blocked[neighbour] and 0 <= distance[neighbour] < best_distance:
                    best, best_distance = action, distance[neighbour]
        return best

    def _target_cells(self, env: int, agent: int, claimed: set[int]) -> tuple[list[int], int | None]:
        """Cells the agent heads for, and the trash it claims (if any)."""
        core = self.core
        if core.carrying[env, agent] >= 0:
            feasible = np.flatnonzero(core.goal_feasible_dump[env, agent])
            if core.reward_rule == "coordination":
                feasible = feasible[core.payoff[feasible] == core.payoff[feasible].max()]
            place_ok = core.tables.place_ok[core.table_rows(env)]
            return list(np.flatnonzero(place_ok[:, feasible].any(1))), None
        static = self._distances(self._blocked(env), [int(core.pos[env, agent])])
        on_floor = core.trash_on_floor()[env] & core.trash_reachable[env, agent]
        choices = [t for t in np.flatnonzero(on_floor) if t not in claimed]
        if not choices:
            return [], None
        nearest = min(choices, key=lambda t: static[core.trash_cell[env, t]])
        return [int(core.trash_cell[env, nearest])], int(nearest)

    def _step_aside(
        self,
        env: int,
        agent: int,
        cell: int,
        targets: list[int],
        blocked: np.ndarray,
        masks: np.ndarray,
    ) -> int | None:
        """A random free move when only other agents stand in the way (to break deadlocks)."""
        if self._step_towards(cell, self._distances(blocked, targets), blocked) is None:
            return None
        free = [action for action in range(4) if masks[env, agent, action]]
        return int(self.rng.choice(free)) if free else None

    def act(self) -> np.ndarray:
        core = self.core
        actions = np.full((core.num_envs, core.n_agents), STAY, dtype=np.int64)
        masks = core.action_masks()
        for env in range(core.num_envs):
            blocked = self._blocked(env)
            occupied = set(core.pos[env].tolist())
            claimed: set[int] = set()
            for agent in range(core.n_agents):
                cell = int(core.pos[env, agent])
                if masks[env, agent, PLACE] and core.carrying[env, agent] >= 0:
                    targets, _ = self._target_cells(env, agent, claimed)
                    if cell in targets:
                        actions[env, agent] = PLACE
                        continue
                if masks[env, agent, PICK]:
                    actions[env, agent] = PICK
                    claimed.add(int(core.trash_at[env * core.n_cells + cell]))
                    continue
                targets, trash = self._target_cells(env, agent, claimed)
                if trash is not None:
                    claimed.add(trash)
                if not targets:
                    continue
                crowded = blocked.copy()
                crowded[list(occupied - {cell})] = True
                move = self._step_towards(cell, self._distances(crowded, targets), crowded)
                if move is None:
                    move = self._step_aside(env, agent, cell, targets, blocked, masks)
                if move is None:
                    continue
                actions[env, agent] = move
                dx, dy = MOVES[move]
                occupied.discard(cell)
                occupied.add(cell + int(dy) * core.width + int(dx))
        return actions
