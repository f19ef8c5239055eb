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
"""

from __future__ import annotations

import numpy as np

from hmarl.envs.basketball_defense import rules
from hmarl.envs.basketball_defense.rules import Skill

_BASKET = rules.BASKET[:, None]
_DRIVE_TARGET = rules.DRIVE_TARGET[:, None]


def unit(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and lengths of coordinate-first ``vectors`` (2, ...)."""
    length = np.sqrt(vectors[0] * vectors[0] + vectors[1] * vectors[1])
    return vectors / np.maximum(length, 1e-9), length


def pick(values: np.ndarray, player: np.ndarray) -> np.ndarray:
    """``values[..., player[e], e]`` for every copy ``e``: one player's entry per copy."""
    return values[..., player, np.arange(player.shape[0])]


def shot_expectation(
    shooter: np.ndarray, def_pos: np.ndarray, def_stance: np.ndarray, skill: Skill
) -> tuple[np.ndarray, np.ndarray]:
    """Make probability and expected points (E,) of shots from ``shooter`` (2, E)."""
    to_basket, distance = unit(_BASKET - shooter)
    to_defenders, def_distance = unit(def_pos - shooter[:, None, :])
    closest = np.argmin(def_distance, axis=0)
    near_direction = pick(to_defenders, closest)
    cos = near_direction[0] * to_basket[0] + near_direction[1] * to_basket[1]
    p_make = rules.open_make_probability(distance, skill) * (
        1.0
        - rules.CONTEST_MAX
        * rules.contest(pick(def_distance, closest), pick(def_stance, closest), cos)
    )
    return p_make, p_make * rules.shot_points(shooter[0], shooter[1])


def handler_choice(
    off_pos: np.ndarray,
    def_pos: np.ndarray,
    def_stance: np.ndarray,
    holder: np.ndarray,
    hold_steps: np.ndarray,
    clock_left_s: np.ndarray,
    uniform: np.ndarray,
    skill: Skill,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether each handler shoots or passes this step, and to whom he would pass."""
    _, gaps = unit(off_pos[:, :, None, :] - def_pos[:, None, :, :])
    openness = gaps.min(axis=1)
    _, ev = shot_expectation(pick(off_pos, holder), def_pos, def_stance, skill)
    threshold = rules.shot_threshold(clock_left_s, skill)
    p_shoot = rules.SHOOT_HAZARD * rules.sigmoid((ev - threshold) / rules.SHOOT_TEMPERATURE)
    mates = openness.copy()
    mates[holder, np.arange(holder.shape[0])] = -np.inf
    receiver = np.argmax(mates, axis=0)
    advantage = pick(mates, receiver) - pick(openness, holder) - rules.PASS_MARGIN
    can_pass = (hold_steps >= rules.MIN_HOLD_STEPS) & np.isfinite(advantage)
    p_pass = np.where(
        can_pass, rules.PASS_HAZARD * rules.sigmoid(advantage / rules.PASS_TEMPERATURE), 0.0
    )
    shoot = uniform < p_shoot
    passes = ~shoot & (uniform < p_shoot + p_pass)
    return shoot, passes, receiver


def drive_velocity(
    handler: np.ndarray, def_pos: np.ndarray, def_stance: np.ndarray, skill: Skill
) -> np.ndarray:
    """Velocity (2, E) of ball handlers at ``handler`` (2, E) driving to the rim."""
    heading, remaining = unit(_DRIVE_TARGET - handler)
    rel = def_pos - handler[:, None, :]
    ahead = rel[0] * heading[0] + rel[1] * heading[1]
    distance = np.sqrt(rel[0] * rel[0] + rel[1] * rel[1])
    in_front = np.where(ahead > 0.0, distance, np.inf)
    nearest = np.argmin(in_front, axis=0)
    near_distance = pick(in_front, nearest)
    lateral = pick(rel, nearest) - pick(ahead, nearest) * heading
    # Dead ahead there is no side to prefer, so the driver goes towards the middle.
    perpendicular = np.stack([-heading[1], heading[0]])
    middle = np.where(perpendicular[0] * -handler[0] >= 0.0, 1.0, -1.0)
    away, lateral_length = unit(-lateral)
    away = np.where(lateral_length > 1e-3, away, perpendicular * middle)
    blocked = np.isfinite(near_distance)
    weight = np.where(
        blocked, rules.closeness(near_distance, rules.AVOID_RANGE, rules.CONTACT_RANGE), 0.0
    )
    direction, _ = unit(heading + rules.AVOID_GAIN * weight * away)
    contact = np.where(
        blocked, rules.closeness(near_distance, rules.CONTACT_RANGE, 2 * rules.PLAYER_RADIUS), 0.0
    )
    stance_contest = rules.STANCE_CONTEST[pick(def_stance, nearest)]
    speed = rules.DRIVE_SPEED * skill.speed * (1.0 - rules.BODY_BLOCK * contact * stance_contest)
    return direction * np.minimum(speed, remaining / rules.DT)


def off_ball_targets(spots: np.ndarray, cutting: np.ndarray) -> np.ndarray:
    """Where off-ball players head (2, n, E): their spot, or the rim while cutting."""
    side = np.sign(spots[0])
    cut = np.stack(
        [
            rules.BASKET[0] + side * rules.CUT_TARGET_OFFSET[0],
            np.full_like(side, rules.BASKET[1] + rules.CUT_TARGET_OFFSET[1]),
        ]
    )
    return np.where(cutting, cut, spots)


def run_to(positions: np.ndarray, targets: np.ndarray, speed: float) -> np.ndarray:
    """Velocities that take ``positions`` towards ``targets`` at ``speed``, arriving exactly."""
    direction, distance = unit(targets - positions)
    return direction * np.minimum(speed, distance / rules.DT)
