"""The rule book of basketball defense: every constant and formula of the game.

Units are metres, seconds and metres per second. The half court is ``COURT_WIDTH``
wide (``x`` in ``[-7.5, 7.5]``) and ``COURT_LENGTH`` deep (``y`` in ``[0, 14]``), the
baseline at ``y = 0`` and the half-court line at ``y = 14``; the basket stands at
``BASKET`` (FIBA geometry). One environment step is ``DT = 0.1`` s.

Formulas (``d`` is a distance in metres, ``clip01`` clips to ``[0, 1]``):

* **reach** ``closeness(d, reach, full) = clip01((reach - d) / (reach - full))``: 1 within
  ``full`` metres, falling linearly to 0 at ``reach``.
* **open shot** ``p_open(d) = shooting * (FAR_MAKE + (RIM_MAKE - FAR_MAKE) * exp(-d / MAKE_DECAY))``,
  further multiplied by ``exp(-(d - DEEP_RANGE) / DEEP_DECAY)`` beyond ``DEEP_RANGE``
  and capped at ``MAX_MAKE``; ``d`` is the shooter's distance to the basket and
  ``shooting`` the skill level's multiplier.
* **contest** of the defender closest to the shooter at distance ``d``:
  ``closeness(d, CONTEST_RANGE, CONTEST_FULL) * STANCE_CONTEST[stance] * front`` with
  ``front = FRONT_MIN + (1 - FRONT_MIN) * max(cos, 0)``, ``cos`` the cosine of the
  angle between shooter->defender and shooter->basket (a defender between shooter and
  basket contests fully, one behind the shooter at ``FRONT_MIN``). The stance is that
  of the defender's last action: standing, running, sliding or recovering.
* **make** ``p_make = p_open(d) * (1 - CONTEST_MAX * contest)``, evaluated when the
  shooting motion ends; a make scores 3 points beyond the three-point line
  (``|x| >= CORNER_THREE_X`` or distance ``>= THREE_RADIUS``), 2 otherwise.
* **block**, tried during the ``SHOT_MOTION_STEPS`` steps of a shooting motion:
  ``BLOCK_MAX * closeness(d, BLOCK_REACH, BLOCK_FULL) * BLOCK_TIMING[k] * front * turnover``
  where ``k`` is how many motion steps have passed (a block at the release is the
  best timed) and ``turnover`` the skill level's multiplier of defensive success.
* **steal** of a held ball:
  ``STEAL_MAX * closeness(d, STEAL_REACH, STEAL_FULL) * catch * turnover`` with
  ``catch = CATCH_BONUS`` during the first ``CATCH_STEPS`` steps after a catch (the
  ball is loose while it is being gathered) and 1 afterwards.
* **interception** of a pass in flight:
  ``INTERCEPT_MAX * closeness(d_ball, INTERCEPT_REACH, INTERCEPT_FULL) * turnover``.
  A failed steal costs ``STEAL_RECOVERY`` steps and a failed block ``BLOCK_RECOVERY``
  steps during which the defender cannot act.

The scripted offense (see ``offense.py``) uses the same formulas to judge its shots:
its expected points ``points * p_make`` are compared with ``shot_threshold(clock)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DT = 0.1
STEPS_PER_SECOND = 10

# --- court (FIBA) ---------------------------------------------------------------
COURT_WIDTH = 15.0
COURT_LENGTH = 14.0
HALF_WIDTH = COURT_WIDTH / 2
BASKET = np.array([0.0, 1.575])
RIM_RADIUS = 0.225
BACKBOARD_Y = 1.2
BACKBOARD_HALF_WIDTH = 0.9
PAINT_HALF_WIDTH = 2.45
FREE_THROW_Y = 5.8
FREE_THROW_RADIUS = 1.8
RESTRICTED_RADIUS = 1.25
THREE_RADIUS = 6.75
CORNER_THREE_X = 6.6
#: Where the straight corner three-point lines meet the arc.
CORNER_THREE_Y = float(BASKET[1] + np.sqrt(THREE_RADIUS**2 - CORNER_THREE_X**2))
PLAYER_RADIUS = 0.4

# --- possession -------------------------------------------------------------------
DEFAULT_SHOT_CLOCK_S = 20.0
#: The possession starts with a check ball at the top: for this many steps the ball
#: is dead (no shot, pass, steal or block) while everybody takes position.
CHECK_STEPS = 5
#: Perimeter spots of the offense, in the order they are filled for 1..5 players:
#: top, wings, corners. The player at the top starts with the ball.
SPOTS = np.array([[0.0, 8.8], [-5.2, 6.6], [5.2, 6.6], [-7.0, 1.2], [7.0, 1.2]])
SPOT_JITTER = 0.6
#: Defenders start between their man and the basket, this far from him (+- jitter).
START_GAP = 1.5
START_JITTER = 0.4

# --- movement -----------------------------------------------------------------------
RUN_SPEED = 6.0
SLIDE_SPEED = 3.5
DRIVE_SPEED = 5.5
OFF_BALL_SPEED = 5.0
#: A move is blocked by the court's edge when the edge cancels more than this
#: fraction of the commanded displacement.
EDGE_BLOCK_FRACTION = 0.5

# --- shooting -----------------------------------------------------------------------
RIM_MAKE = 0.85
FAR_MAKE = 0.27
MAKE_DECAY = 2.5
DEEP_RANGE = 8.5
DEEP_DECAY = 2.0
MAX_MAKE = 0.95
SHOT_MOTION_STEPS = 3
CONTEST_RANGE = 2.5
CONTEST_FULL = 0.6
CONTEST_MAX = 0.65
FRONT_MIN = 0.4
STANCE_STILL, STANCE_RUN, STANCE_SLIDE, STANCE_RECOVERING = 0, 1, 2, 3
#: How well each stance contests a shot and stops a drive: a set, sliding defender
#: is best, a running one is caught moving, an airborne or stumbling one is beaten.
STANCE_CONTEST = np.array([0.8, 0.55, 1.0, 0.35])

# --- blocks, steals, interceptions --------------------------------------------------
BLOCK_MAX = 0.6
BLOCK_REACH = 1.4
BLOCK_FULL = 0.5
BLOCK_TIMING = np.array([0.3, 0.6, 1.0])
BLOCK_RECOVERY = 8
STEAL_MAX = 0.22
STEAL_REACH = 1.2
STEAL_FULL = 0.4
CATCH_BONUS = 1.8
CATCH_STEPS = 3
STEAL_RECOVERY = 6
INTERCEPT_MAX = 0.2
INTERCEPT_REACH = 1.2
INTERCEPT_FULL = 0.3
PASS_SPEED = 12.0

# --- the scripted offense's judgement -------------------------------------------------
#: Per-step probability of shooting when the shot is clearly worth its threshold.
SHOOT_HAZARD = 0.4
#: Softness of the shoot decision, in expected points.
SHOOT_TEMPERATURE = 0.08
#: In the last ``LATE_CLOCK_S`` seconds the threshold falls linearly to 0.
LATE_CLOCK_S = 4.0
#: Per-step probability of passing when a teammate is clearly more open.
PASS_HAZARD = 0.25
#: How much more open (metres to the nearest defender) a teammate must be.
PASS_MARGIN = 0.8
PASS_TEMPERATURE = 0.3
#: A catch is held at least this long before the next pass (no ping-pong).
MIN_HOLD_STEPS = 4
#: Defenders closer than this in front of a driver stop his drive; further out, up
#: to ``AVOID_RANGE``, he steers around them.
CONTACT_RANGE = 1.0
AVOID_RANGE = 2.5
AVOID_GAIN = 1.2
BODY_BLOCK = 0.8
#: The driver aims at a point this far in front of the basket.
DRIVE_TARGET = BASKET + np.array([0.0, 0.7])
#: Off-ball cuts: per-step probability of starting one, length and target.
CUT_HAZARD = 0.03
CUT_STEPS = 15
CUT_TARGET_OFFSET = np.array([1.2, 1.0])

# --- observation scaling ----------------------------------------------------------------
POS_SCALE = COURT_WIDTH
VEL_SCALE = 10.0

# --- options ------------------------------------------------------------------------------
#: Where the guard option aims: this far from the man, towards the basket.
GUARD_GAP = 1.0
#: ``guard_k`` is reached within this distance of that spot.
GUARD_RANGE = 0.5
DOUBLE_TEAM_RANGE = 1.5
RIM_PROTECT_SPOT = BASKET + np.array([0.0, 1.2])
RIM_PROTECT_RANGE = 1.5


@dataclass(frozen=True)
class Skill:
    """How good the scripted offense is."""

    shooting: float
    """Multiplies every make probability."""
    speed: float
    """Multiplies every offensive speed."""
    turnover: float
    """Multiplies the success probability of steals, interceptions and blocks."""
    shot_threshold: float
    """Expected points a shot must be worth before the late clock (patience)."""


SKILLS = {
    "easy": Skill(shooting=0.88, speed=0.9, turnover=1.3, shot_threshold=0.95),
    "normal": Skill(shooting=1.0, speed=1.0, turnover=1.0, shot_threshold=1.05),
    "hard": Skill(shooting=1.12, speed=1.08, turnover=0.75, shot_threshold=1.15),
}

#: Possession outcome codes as reported in ``infos["outcome"]``.
OUTCOMES = ("none", "made_2", "made_3", "miss", "block", "steal", "shot_clock")
NONE, MADE_2, MADE_3, MISS, BLOCK, STEAL, SHOT_CLOCK = range(len(OUTCOMES))


def clip01(x: np.ndarray) -> np.ndarray:
    """``x`` clipped to ``[0, 1]`` (two ufuncs: np.clip's Python wrapper costs more at the
    small sizes of one copy)."""
    return np.minimum(np.maximum(x, 0.0), 1.0)


def closeness(distance: np.ndarray, reach: float, full: float) -> np.ndarray:
    """1 within ``full`` metres, falling linearly to 0 at ``reach``."""
    return clip01((reach - distance) / (reach - full))


def open_make_probability(distance: np.ndarray, skill: Skill) -> np.ndarray:
    """Probability that an uncontested shot from ``distance`` to the basket goes in."""
    p = FAR_MAKE + (RIM_MAKE - FAR_MAKE) * np.exp(-distance / MAKE_DECAY)
    p = p * np.exp(-np.maximum(distance - DEEP_RANGE, 0.0) / DEEP_DECAY)
    return np.minimum(p * skill.shooting, MAX_MAKE)


def front_factor(cos: np.ndarray) -> np.ndarray:
    """Weight of a defender at angle ``cos`` from the shooter's line to the basket."""
    return FRONT_MIN + (1.0 - FRONT_MIN) * np.maximum(cos, 0.0)


def contest(distance: np.ndarray, stance: np.ndarray, cos: np.ndarray) -> np.ndarray:
    """How strongly a defender at ``distance`` with ``stance`` contests a shot, in [0, 1]."""
    return closeness(distance, CONTEST_RANGE, CONTEST_FULL) * STANCE_CONTEST[stance] * front_factor(cos)


def shot_points(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """2 or 3: the value of a made shot from ``(x, y)``."""
    distance = np.hypot(x - BASKET[0], y - BASKET[1])
    three = (np.abs(x) >= CORNER_THREE_X) | (distance >= THREE_RADIUS)
    return np.where(three, 3, 2)


def shot_threshold(clock_left_s: np.ndarray, skill: Skill) -> np.ndarray:
    """Expected points a shot must be worth for the offense to take it."""
    return skill.shot_threshold * clip01(clock_left_s / LATE_CLOCK_S)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
