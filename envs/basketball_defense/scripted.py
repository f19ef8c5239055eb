"""Scripted defenses, the baselines of the sanity table: each maps a core to the
actions of all its defenders, ``(num_envs, n_players)``.

* ``stand_still``: every defender keeps his starting spot (no defense).
* ``random_defense``: a uniformly random legal action.
* ``man_to_man``: defender i guards offensive player i from ``GUARD_GAP`` metres on
  the basket side, running when he is far from that spot and sliding when near; he
  tries to intercept passes within reach and blocks at the shot's release.

Scripted **high levels** choose goals of the options interface rather than primitives,
so that they can run over a trained low level (``benchmarks/basketball_high_levels.py``
compares them with the learned high levels); each maps a core and its goal mask
``(num_envs, n_players, n_goals)`` to goals ``(num_envs, n_players)``:

* ``man_to_man_goals``: defender i keeps ``guard_i``; he takes ``steal`` only while a
  pass is in flight (an interception) and ``block`` whenever it is feasible (at the
  shot's release; a failed try leaves him recovering).
* ``help_goals``: the same, except that the defender whose man stands farthest from
  the ball (the weak side) takes ``protect_rim`` instead of ``guard``: a team choice,
  since which defender helps depends on where all the others' men are.
"""

from __future__ import annotations

import numpy as np

from hmarl.envs.basketball_defense import rules
from hmarl.envs.basketball_defense.core import (
    BLOCK,
    NOOP,
    PASS,
    RUN_ACTIONS,
    SLIDE_ACTIONS,
    STEAL,
    BasketballDefenseCore,
)
from hmarl.envs.basketball_defense.offense import unit

#: Beyond this distance from his spot the man-to-man defender runs; within it, slides.
RUN_DISTANCE = 1.0
#: Within this distance the defender holds his spot.
SETTLED_DISTANCE = 0.15


def stand_still(core: BasketballDefenseCore, rng: np.random.Generator) -> np.ndarray:
    return np.full((core.num_envs, core.n_players), NOOP, dtype=np.int64)


def random_defense(core: BasketballDefenseCore, rng: np.random.Generator) -> np.ndarray:
    mask = core.action_masks().astype(bool)
    scores = np.where(mask, rng.random(mask.shape), -1.0)
    return np.argmax(scores, axis=-1)


def man_to_man(core: BasketballDefenseCore, rng: np.random.Generator) -> np.ndarray:
    toward_basket, _ = unit(rules.BASKET[:, None, None] - core.off_pos)
    offset = core.off_pos + rules.GUARD_GAP * toward_basket - core.def_pos
    _, distance = unit(offset)
    sector = np.round(np.arctan2(offset[1], offset[0]) / (np.pi / 4)).astype(np.int64) % 8
    actions = np.where(distance > RUN_DISTANCE, RUN_ACTIONS[sector], SLIDE_ACTIONS[sector])
    actions = np.where(distance <= SETTLED_DISTANCE, NOOP, actions).T
    mask = core.action_masks()
    intercept = (mask[..., STEAL] == 1) & (core.phase == PASS)[:, None]
    release = (core.shot_step == rules.SHOT_MOTION_STEPS - 1)[:, None]
    block = (mask[..., BLOCK] == 1) & release
    actions = np.where(intercept, STEAL, actions)
    return np.where(block, BLOCK, actions)


DEFENSES = {"stand_still": stand_still, "random": random_defense, "man_to_man": man_to_man}


def man_to_man_goals(core: BasketballDefenseCore, goal_mask: np.ndarray) -> np.ndarray:
    n = core.n_players
    steal, block = n + 2, n + 3
    goals = np.broadcast_to(np.arange(n), (core.num_envs, n)).copy()
    goals[goal_mask[..., steal] & (core.phase == PASS)[:, None]] = steal
    goals[goal_mask[..., block]] = block  # feasible at the release only
    return goals


def help_goals(core: BasketballDefenseCore, goal_mask: np.ndarray) -> np.ndarray:
    n = core.n_players
    goals = man_to_man_goals(core, goal_mask)
    copies = np.arange(core.num_envs)
    ball = core._ball_position()
    _, from_ball = unit(core.off_pos - ball[:, None, :])
    weak = from_ball.argmax(axis=0)
    helper = goals[copies, weak] == weak
    goals[copies[helper], weak[helper]] = n + 1
    return goals


GOAL_POLICIES = {"man_to_man": man_to_man_goals, "help": help_goals}
