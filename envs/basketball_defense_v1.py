"""Basketball defense, version 1: defenders (the agents) against a scripted offense.

One episode is one possession on a FIBA half court: ``n_players`` defenders against as
many scripted offensive players, who dribble, drive, pass, cut and shoot. The only
reward comes when the possession ends, so it is sparse and delayed. ``env``,
``parallel_env`` and ``raw_env`` are PettingZoo's AEC and parallel faces;
``vector_env`` is the batched face with auto-reset that trainers use. The rule book
(court, shot, contest, steal and block formulas) is :mod:`hmarl.envs.basketball_defense.rules`;
the offense's behaviour is :mod:`hmarl.envs.basketball_defense.offense`.

>>> from hmarl.envs import basketball_defense_v1
>>>
>>> env = basketball_defense_v1.parallel_env(n_players=3)  # PettingZoo parallel
>>> venv = basketball_defense_v1.vector_env(num_envs=1024, n_players=3)  # batched, auto-reset

Agents
------
``defender_0`` ... ``defender_{n-1}`` (``n = n_players``, 1-5). Defender ``i`` is
matched with offensive player ``i``. All act at every step of 0.1 s (the parallel
API); positions are metres, ``x`` in ``[-7.5, 7.5]`` across the court, ``y`` in
``[0, 14]`` from the baseline to half court.

Actions
-------
``Discrete(19)``: 0 ``noop``; 1-8 ``run_<angle>`` in 8 directions (fast, a poor
contest); 9-16 ``slide_<angle>`` in 8 directions (slower, a good defensive stance);
17 ``steal``; 18 ``block``. Angles are degrees counter-clockwise from ``+x``.

* **Action mask.** ``noop`` always; moves unless the defender is recovering from a
  failed steal or block; ``steal`` within reach of the ball; ``block`` within reach
  of a shooter in his shooting motion.
* **Invalid actions.** ``infos[agent]["invalid_action"]`` is True for a masked action
  (it does nothing) and for a move the court's edge blocks.

Observations
------------
``Dict({"observation": Box(-1, 1, (obs_dim,), float32), "action_mask": Box(0, 1,
(19,), int8)})``. With ``view="full"`` each defender observes, with ``obs_dim = 11 +
10 n``: his own position (2), velocity (2) and recovery (1); the basket relative to
himself (2); the ball's phase one-hot (held, pass, shooting) (3), the ball relative to
himself (2), shooting-motion progress (1), shot clock left (1) and a live-ball flag
(1); for every offensive player his position relative to the defender (2), velocity
(2) and has-ball (1); for every other defender relative position (2) and velocity (2);
his own index one-hot (n). Positions are divided by the court width, velocities by 10
m/s. With ``view="matched"`` a defender keeps the features up to the live-ball flag,
the block of his matched opponent and his index.

**State** (``state()``, for centralised training; complete in both views): every
offensive player's position, velocity and has-ball, every defender's position,
velocity and recovery, and the ball's features: ``state_dim = 8 + 10 n``.

Rewards
-------
The possession ends with a made shot (2 or 3 points), a miss, a block, a steal (of the
dribble or a pass) or a shot-clock violation. The team reward, shared by all
defenders, is +1 for a stop, minus the points of a made shot, 0 at every other step.
``infos`` at the end hold ``outcome`` (an index into ``OUTCOMES``: ``none``,
``made_2``, ``made_3``, ``miss``, ``block``, ``steal``, ``shot_clock``),
``points_allowed`` and the 0/1 flags ``shot`` (a shot was taken: made, missed or
blocked), ``miss``, ``block`` and ``steal``.

Options and goals
-----------------
Per defender, in this order: ``guard_k`` for every offensive player ``k``,
``double_team``, ``protect_rim``, ``steal``, ``block`` (``n + 4`` goals).

* **Targets:** ``guard_k`` sends the defender to the guard spot, ``GUARD_GAP`` (1 m)
  from offensive player ``k`` towards the basket; ``double_team`` to the ball handler;
  ``protect_rim`` to a spot 1.2 m in front of the basket; ``steal`` to the ball;
  ``block`` to the ball handler.
* **Reached:** ``guard_k`` within 0.5 m of the guard spot; ``double_team`` within
  1.5 m of the ball handler while he holds the ball; ``protect_rim`` within 1.5 m of
  its spot; the one-step goals ``steal`` and ``block`` end after their action.
* **Feasible:** every ``guard_k`` and ``protect_rim``; ``double_team`` unless a pass
  is in flight; ``steal`` within reach of the ball; ``block`` within reach of a
  shooter at the release only (the last step of his shooting motion, the best-timed
  try), although the ``block`` action stays available through the whole motion.
* **Encoding:** a one-hot of the goal and the goal's target relative to the defender
  (divided by the court width): ``goal_dim = n + 6``.
* ``steal`` and ``block`` are one-step goals: ``goal_primitive`` gives 17 and 18.

Version History
---------------
* v1: the action mask allows moves during the 0.5 s check (they always took effect
  there), so a masked action is always reported in ``invalid_action``. v1 is also the
  first version number for two changes made under v0 without one: the ``block`` goal
  is feasible only at the release of a shot, and ``guard_k`` is reached at the guard
  spot (``GUARD_GAP`` metres from the man towards the basket).
* v0: initial release.
"""

from hmarl.envs._base import make_constructors
from hmarl.envs.basketball_defense import BasketballDefenseCore

env, parallel_env, raw_env, vector_env = make_constructors(BasketballDefenseCore)

__all__ = ["env", "parallel_env", "raw_env", "vector_env"]
