"""Top-down drawing of one copy of the basketball defense core with pygame.

The basket is at the top of the frame, the half-court line at the bottom; a header
shows the shot clock, the possession's result so far and the episode return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pygame

from hmarl.envs._render import font
from hmarl.envs.basketball_defense import rules

if TYPE_CHECKING:
    from hmarl.envs.basketball_defense.core import BasketballDefenseCore

PIXELS_PER_METRE = 40
MARGIN = 12
HEADER = 44
FLOOR = (222, 184, 135)
PAINT = (196, 120, 80)
LINE = (250, 250, 245)
BACKGROUND = (40, 44, 52)
OFFENSE = (200, 40, 40)
DEFENSE = (30, 90, 200)
BALL = (255, 140, 0)
TEXT = (240, 240, 240)
RECOVERING = (120, 140, 170)


def frame_size() -> tuple[int, int]:
    width = int(rules.COURT_WIDTH * PIXELS_PER_METRE) + 2 * MARGIN
    height = int(rules.COURT_LENGTH * PIXELS_PER_METRE) + 2 * MARGIN + HEADER
    return width, height


def _to_pixels(x: float, y: float) -> tuple[int, int]:
    return (
        int(np.rint(MARGIN + (x + rules.HALF_WIDTH) * PIXELS_PER_METRE)),
        int(np.rint(HEADER + MARGIN + y * PIXELS_PER_METRE)),
    )


def _metres(length: float) -> int:
    return max(1, int(np.rint(length * PIXELS_PER_METRE)))


def _draw_court(surface: pygame.Surface) -> None:
    surface.fill(BACKGROUND)
    left, top = _to_pixels(-rules.HALF_WIDTH, 0.0)
    court = pygame.Rect(left, top, _metres(rules.COURT_WIDTH), _metres(rules.COURT_LENGTH))
    pygame.draw.rect(surface, FLOOR, court)
    paint_left, _ = _to_pixels(-rules.PAINT_HALF_WIDTH, 0.0)
    paint = pygame.Rect(paint_left, top, _metres(2 * rules.PAINT_HALF_WIDTH), _metres(rules.FREE_THROW_Y))
    pygame.draw.rect(surface, PAINT, paint)
    pygame.draw.rect(surface, LINE, paint, 2)
    pygame.draw.circle(surface, LINE, _to_pixels(0.0, rules.FREE_THROW_Y), _metres(rules.FREE_THROW_RADIUS), 2)
    basket = _to_pixels(*rules.BASKET)
    three = _metres(rules.THREE_RADIUS)
    # The arc runs between the corner lines, below the basket on screen.
    corner_angle = np.arcsin((rules.CORNER_THREE_Y - rules.BASKET[1]) / rules.THREE_RADIUS)
    arc = pygame.Rect(basket[0] - three, basket[1] - three, 2 * three, 2 * three)
    pygame.draw.arc(surface, LINE, arc, np.pi + corner_angle, 2 * np.pi - corner_angle, 2)
    for side in (-1.0, 1.0):
        pygame.draw.line(
            surface,
            LINE,
            _to_pixels(side * rules.CORNER_THREE_X, 0.0),
            _to_pixels(side * rules.CORNER_THREE_X, rules.CORNER_THREE_Y),
            2,
        )
    restricted = _metres(rules.RESTRICTED_RADIUS)
    pygame.draw.arc(
        surface,
        LINE,
        pygame.Rect(basket[0] - restricted, basket[1] - restricted, 2 * restricted, 2 * restricted),
        np.pi,
        2 * np.pi,
        2,
    )
    pygame.draw.circle(surface, LINE, _to_pixels(0.0, rules.COURT_LENGTH), _metres(rules.FREE_THROW_RADIUS), 2)
    pygame.draw.rect(surface, LINE, court, 3)
    pygame.draw.line(
        surface,
        LINE,
        _to_pixels(-rules.BACKBOARD_HALF_WIDTH, rules.BACKBOARD_Y),
        _to_pixels(rules.BACKBOARD_HALF_WIDTH, rules.BACKBOARD_Y),
        4,
    )
    pygame.draw.circle(surface, BALL, basket, _metres(rules.RIM_RADIUS), 3)


def _draw_player(surface: pygame.Surface, position: tuple[int, int], colour: tuple[int, int, int], number: int) -> None:
    radius = _metres(rules.PLAYER_RADIUS)
    pygame.draw.circle(surface, colour, position, radius)
    pygame.draw.circle(surface, LINE, position, radius, 2)
    label = font(14).render(str(number), True, TEXT)
    surface.blit(label, label.get_rect(center=position))


def draw(core: BasketballDefenseCore, surface: pygame.Surface, index: int, episode_return: float) -> None:
    """Draw copy ``index`` of ``core``: court, numbered players, ball and scoreboard."""
    from hmarl.envs.basketball_defense.core import PASS, SHOOTING

    _draw_court(surface)
    for k in range(core.n_players):
        _draw_player(surface, _to_pixels(*core.off_pos[:, k, index]), OFFENSE, k)
        recovering = core.recovery[k, index] > 0
        _draw_player(surface, _to_pixels(*core.def_pos[:, k, index]), RECOVERING if recovering else DEFENSE, k)
    phase = int(core.phase[index])
    ball = core._ball_position(np.array([index]))[:, 0]
    ball_pixels = _to_pixels(*ball)
    if phase != PASS:
        # A held ball is drawn at the holder's hand, not hidden under his number.
        ball_pixels = (ball_pixels[0] + _metres(0.35), ball_pixels[1] - _metres(0.35))
    if phase == SHOOTING:
        holder = _to_pixels(*core.off_pos[:, core.holder[index], index])
        pygame.draw.circle(surface, BALL, holder, _metres(rules.PLAYER_RADIUS + 0.2), 2)
    pygame.draw.circle(surface, BALL, ball_pixels, _metres(0.2))
    pygame.draw.circle(surface, (0, 0, 0), ball_pixels, _metres(0.2), 1)

    clock = max(core.clock_steps - int(core.t[index]), 0) / rules.STEPS_PER_SECOND
    outcome = rules.OUTCOMES[int(core.outcome[index])]
    status = "live" if core.t[index] >= rules.CHECK_STEPS else "check ball"
    result = status if outcome == "none" else outcome.replace("_", " ")
    header = f"shot clock {clock:4.1f}   {result}   points {int(core.points[index])}   return {episode_return:+.1f}"
    surface.blit(font(18).render(header, True, TEXT), (MARGIN, 12))
