"""Multi-agent trash collection, version 0.

Agents on a grid pick up trash and place it into dumps; rewards are sparse (only a
placement, or the end of a coordination game, pays). The layouts ``room``, ``ring``
and ``coordination`` reproduce the three tasks of Tang et al., "Hierarchical Deep
Multiagent Reinforcement Learning with Temporal Abstraction"; ``random`` draws a
solvable layout per episode; any other string is read as the path of an ASCII map
(legend in ``assets/layouts/README.md``).

>>> from hmarl.envs import trash_collection_v0
>>>
>>> env = trash_collection_v0.parallel_env(layout="ring")  # PettingZoo parallel
>>> aec = trash_collection_v0.env(layout="coordination")  # PettingZoo AEC
>>> venv = trash_collection_v0.vector_env(num_envs=1024, layout="room")  # batched, auto-reset

Agents
------
``agent_0`` ... ``agent_{n-1}``: two in ``room``, ``ring`` and ``coordination``, as
many as the map places in a map file, ``n_agents`` with ``layout="random"``. All act
at every step (the parallel API) and all share one action space and one observation
space.

The grid is ``(x, y)`` with ``y`` counted from the bottom; cell ``y * width + x``.

Actions
-------
``Discrete(7 + extra_actions)``: 0 up (``y + 1``, the original tasks' "forward"),
1 down, 2 left, 3 right, 4 stay, 5 pick, 6 place, then ``extra_actions`` actions that
never do anything.

* A move into a wall, a wall dump or off the grid does nothing. Moves are
  simultaneous: a move succeeds only if its target cell is free after the step, so two
  agents swapping cells both stay, an agent may follow another that moves away, and of
  several agents moving into one cell one winner is drawn from the seeded generator
  while the others stay.
* Pick takes the trash on the agent's cell if the agent carries nothing; place drops
  the carried trash into a dump the agent stands on or is 4-adjacent to (the
  lowest-numbered such dump).
* **Action mask.** Moves that a wall or the grid edge blocks, pick and place that
  would do nothing, and the extra actions are masked; stay is always allowed. Masked
  actions may still be taken (they do nothing and are reported invalid).
* **Invalid actions.** ``infos[agent]["invalid_action"]`` is True when the action did
  nothing: a blocked move (wall, grid edge or another agent), pick without trash
  underfoot or while carrying, place without carried trash or reachable dump, any
  extra action. Stay is a deliberate choice and never invalid.

Observations
------------
``Dict({"observation": Box(0, 1, (obs_dim,), float32), "action_mask": Box(0, 1,
(n_actions,), int8)})``. The observation of agent ``i``: five ``height x width``
channels, flattened channel-major in cell order (self, other agents, trash on the
floor, dumps, walls), then 1.0 if agent ``i`` carries trash: ``obs_dim = 5 * cells +
1``; ``observation_grid = (5, height, width)`` for convolutional networks.

With ``view="egocentric"`` the five channels cover only a ``view_size x view_size``
window centred on the agent (cells beyond the grid read as walls), so the cost does
not grow with the grid: ``obs_dim = 5 * view_size**2 + 1``, ``observation_grid = (5,
view_size, view_size)`` and no ``goal_grid`` (goals stay on the whole grid).

**State** (``state()``, for centralised training): one position channel per agent,
trash, dumps, walls, each agent's carrying flag, and the fraction of the episode left:
``state_dim = (n_agents + 3) * cells + n_agents + 1``.

Rewards
-------
* ``place`` layouts (``room``, ``ring``, ``random``, most maps) pay the placing agent
  +0.5 per trash.
* ``coordination`` layouts pay at the step the last trash is dumped: ``payoff[d]`` to
  every agent if all trash is in dump ``d``, the split value otherwise; nothing if the
  time limit comes first.
* ``reward_mode="shared"`` gives every agent the sum of the agents' rewards.

Episodes terminate once every trash is dumped and are truncated at ``max_cycles``.
``infos`` at the end of an episode hold ``trash_collected`` and ``success`` (1.0 when
every trash was dumped).

Options and goals
-----------------
Per agent, in this order: ``goto_dump_d`` for every dump, ``goto_trash_t`` for every
trash, ``pick``, ``place``. In ``room``: dump 0-1, trash 0-1, pick, place (6 goals);
``ring``: 2 dumps, 8 trash, pick, place (12); ``coordination``: 2 dumps, 2 trash,
pick, place (6; each agent can reach only its own trash, so the other trash goal is
never feasible for it).

* **Reached:** ``goto_dump_d`` when the agent could place into dump ``d`` from its
  cell; ``goto_trash_t`` when it stands on trash ``t``'s cell; ``pick`` when it
  carries trash, ``place`` when it carries none.
* **Feasible:** ``goto_dump_d`` when a placing cell of dump ``d`` is reachable;
  ``goto_trash_t`` when trash ``t`` is still on the floor and reachable; ``pick`` when
  pick would take trash now; ``place`` when place would dump trash now.
* **Encoding:** a ``cells`` map with 1.0 at the goal's cell (the dump or the trash;
  all zero for pick and place) followed by a one-hot of the goal kind (dump, trash,
  pick, place): ``goal_dim = cells + 4``; ``goal_grid = (1, height, width)``.
* ``pick`` and ``place`` are one-step goals: ``goal_primitive`` gives 5 and 6.

``layout="random"`` draws a new layout for every episode of every copy from the seeded
generator (sizes, and so the spaces, stay fixed).

Version History
---------------
* v0: initial release. A random layout whose draws all leave too small a floor region
  (1,000 of them, on a crowded grid with dense walls) became a grid without walls
  instead of an error at reset; every layout drawn before is drawn as before.
"""

from hmarl.envs._base import make_constructors
from hmarl.envs.trash_collection.core import ACTION_NAMES, TrashCollectionCore
from hmarl.envs.trash_collection.layouts import BUILTIN_LAYOUTS

LAYOUTS = (*BUILTIN_LAYOUTS, "random")

env, parallel_env, raw_env, vector_env = make_constructors(TrashCollectionCore)

__all__ = [
    "ACTION_NAMES",
    "LAYOUTS",
    "TrashCollectionCore",
    "env",
    "parallel_env",
    "raw_env",
    "vector_env",
]
