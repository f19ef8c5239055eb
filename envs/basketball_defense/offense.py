"""The scripted offense, vectorised over copies and players.

Arrays keep the copies axis ``E`` last, as the core stores them (positions are
``(2, n, E)``: coordinate, player, copy), so that every operation runs over long
contiguous rows. The randomness comes in as uniform draws from the core's generator,
so one seed fixes the offense too.

* The **ball handler** chooses each step between shooting, passing and driving:
  ``P(shoot) = SHOOT_HAZARD * sigmoid((ev - threshold) / SHOOT_TEMPERATURE)`` where
  ``ev = points * p_make`` judges his shot from where he stands against the closest
  defender and ``threshold`` (``rules.shot_threshold``) falls to 0 in the late clock;
  ``P(pass) = PASS_HAZARD * sigmoid((open_mate - open_self - PASS_MARGIN) / PASS_TEMPERATURE)``
  towards the most open teammate (largest distance to his nearest defender), allowed
  ``MIN_HOLD_STEPS`` after a catch; otherwise he drives.
* A **drive** heads for ``DRIVE_TARGET`` in front of the rim. The nearest defender in
  front (closer than ``AVOID_RANGE``) makes the driver steer sideways, away from him,
  with weight ``closeness(d, AVOID_RANGE, CONTACT_RANGE) * AVOID_GAIN``; at contact
  the driver's speed is cut by ``BODY_BLOCK * closeness(d, CONTACT_RANGE, 2 r) *
  STANCE_CONTEST[stance]`` (``r`` the player radius).
* **Off-ball** players return to their perimeter spot, and with probability
  ``CUT_HAZARD`` per step cut to the basket for ``CUT_STEPS`` steps, on the side of
  their spot.

The judgements take the defenders' offsets from one offensive player, ``(2, n_def,
E)``, and their lengths ``(n_def, E)``: the core computes them once per step for every
pair of players and hands each judgement its slice.
"""

from __future__ import annotations

import numpy as np

from hmarl.envs.basketball_defense import rules
from hmarl.envs.basketball_defense.rules import Skill

_BASKET = rules.BASKET[:, None]
_DRIVE_TARGET = rules.DRIVE_TARGET[:, None]
#: Turns a unit vector (x, y) into its left perpendicular (-y, x) once reversed.
_PERPENDICULAR_SIGN = np.array([[-1.0], [1.0]])


def norm(vectors: np.ndarray) -> np.ndarray:
    """Lengths of coordinate-first ``vectors`` (2, ...)."""
    return np.sqrt(vectors[0] * vectors[0] + vectors[1] * vectors[1])


def unit(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and lengths of coordinate-first ``vectors`` (2, ...)."""
    length = norm(vectors)
    return vectors / np.maximum(length, 1e-9), length


def flat_index(player: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Where ``player[e]``'s entry of copy ``e`` sits in a flattened ``(n, E)`` plane, for
    :func:`pick`; ``columns`` is ``arange(E)``."""
    return player * columns.shape[0] + columns


def pick(values: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """``values[..., player[e], e]`` for every copy ``e`` (one player's entry per copy),
    given ``flat = flat_index(player, columns)``: a ``take`` along the flattened last two
    axes, several times faster than indexing with two arrays."""
    return values.reshape((*values.shape[:-2], -1)).take(flat, axis=-1)


def shot_expectation(
    shooter: np.ndarray,
    offsets: np.ndarray,
    distances: np.ndarray,
    def_stance: np.ndarray,
    skill: Skill,
    columns: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Make probability and points (E,) of shots from ``shooter`` (2, E), whose
    defenders are at ``offsets`` from him."""
    to_basket, distance = unit(_BASKET - shooter)
    closest = flat_index(distances.argmin(axis=0), columns)
    near_distance = pick(distances, closest)
    near_direction = pick(offsets, closest) / np.maximum(near_distance, 1e-9)
    cos = near_direction[0] * to_basket[0] + near_direction[1] * to_basket[1]
    p_make = rules.open_make_probability(distance, skill) * (
        1.0 - rules.CONTEST_MAX * rules.contest(near_distance, pick(def_stance, closest), cos)
    )
    return p_make, rules.shot_points(shooter[0], shooter[1])


def handler_choice(
    openness: np.ndarray,
    holder: np.ndarray,
    hold_steps: np.ndarray,
    expected_points: np.ndarray,
    clock_left_s: np.ndarray,
    uniform: np.ndarray,
    skill: Skill,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether each handler shoots or passes this step, and to whom he would pass;
    ``openness`` (n, E) is every offensive player's distance to his nearest defender and
    ``holder`` the handler's :func:`flat_index`."""
    threshold = rules.shot_threshold(clock_left_s, skill)
    p_shoot = rules.SHOOT_HAZARD * rules.sigmoid((expected_points - threshold) / rules.SHOOT_TEMPERATURE)
    mates = openness.copy()
    mates.reshape(-1)[holder] = -np.inf
    receiver = mates.argmax(axis=0)
    advantage = mates.max(axis=0) - pick(openness, holder) - rules.PASS_MARGIN
    # Without a teammate the advantage is -inf and so is the pass probability's logit.
    p_pass = (hold_steps >= rules.MIN_HOLD_STEPS) * (rules.PASS_HAZARD * rules.sigmoid(advantage / rules.PASS_TEMPERATURE))
    shoot = uniform < p_shoot
    passes = ~shoot & (uniform < p_shoot + p_pass)
    return shoot, passes, receiver


def drive_velocity(
    handler: np.ndarray,
    offsets: np.ndarray,
    distances: np.ndarray,
    def_stance: np.ndarray,
    skill: Skill,
    columns: np.ndarray,
) -> np.ndarray:
    """Velocity (2, E) of ball handlers at ``handler`` (2, E) driving to the rim, with
    their defenders at ``offsets`` from them."""
    heading, remaining = unit(_DRIVE_TARGET - handler)
    ahead = offsets[0] * heading[0] + offsets[1] * heading[1]
    in_front = np.where(ahead > 0.0, distances, np.inf)
    near_distance = in_front.min(axis=0)
    speed = rules.DRIVE_SPEED * skill.speed
    if not (near_distance < rules.AVOID_RANGE).any():
        # Nobody in front within reach anywhere: the weights below would all be 0, and
        # heading is renormalised just as the steered direction would be.
        direction, _ = unit(heading)
        return direction * np.minimum(speed, remaining / rules.DT)
    nearest = flat_index(in_front.argmin(axis=0), columns)
    lateral = pick(offsets, nearest) - pick(ahead, nearest) * heading
    # Dead ahead there is no side to prefer, so the driver goes towards the middle.
    perpendicular = heading[::-1] * _PERPENDICULAR_SIGN
    middle = np.where(perpendicular[0] * handler[0] <= 0.0, 1.0, -1.0)
    away, lateral_length = unit(-lateral)
    away = np.where(lateral_length > 1e-3, away, perpendicular * middle)
    # With nobody in front the distance is inf and both closeness weights are 0.
    weight = rules.closeness(near_distance, rules.AVOID_RANGE, rules.CONTACT_RANGE)
    direction, _ = unit(heading + (rules.AVOID_GAIN * weight) * away)
    contact = rules.closeness(near_distance, rules.CONTACT_RANGE, 2 * rules.PLAYER_RADIUS)
    stance_contest = rules.STANCE_CONTEST[pick(def_stance, nearest)]
    speed = speed * (1.0 - rules.BODY_BLOCK * contact * stance_contest)
    return direction * np.minimum(speed, remaining / rules.DT)


def cut_targets(spots: np.ndarray) -> np.ndarray:
    """Where off-ball players at ``spots`` (2, n, E) cut to: beside the rim, on their side."""
    targets = np.empty_like(spots)
    targets[0] = rules.BASKET[0] + np.sign(spots[0]) * rules.CUT_TARGET_OFFSET[0]
    targets[1] = rules.BASKET[1] + rules.CUT_TARGET_OFFSET[1]
    return targets


def run_to(positions: np.ndarray, targets: np.ndarray, speed: float) -> np.ndarray:
    """Velocities that take ``positions`` towards ``targets`` at ``speed``, arriving exactly."""
    direction, distance = unit(targets - positions)
    return direction * np.minimum(speed, distance / rules.DT)
