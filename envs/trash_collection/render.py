"""Drawing one trash-collection copy with pygame.

The grid is drawn with ``y`` growing upwards, as the coordinates are defined, under a
header bar showing the step counter, the trash dumped and the episode's score. Each
agent has its own colour and number; an agent that carries trash shows a small bag.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import pygame

from hmarl.envs._render import font, sprite

if TYPE_CHECKING:
    from hmarl.envs.trash_collection.core import TrashCollectionCore

CELL = 48
HEADER = 40
FLOOR = (236, 232, 220)
GRID_LINE = (214, 208, 194)
HEADER_BACKGROUND = (44, 48, 60)
HEADER_TEXT = (240, 240, 240)
AGENT_COLOURS = (
    (66, 133, 244),
    (234, 67, 53),
    (251, 188, 5),
    (52, 168, 83),
    (171, 71, 188),
    (0, 172, 193),
    (255, 112, 67),
    (158, 157, 36),
    (92, 107, 192),
    (236, 64, 122),
    (141, 110, 99),
    (38, 166, 154),
    (255, 167, 38),
    (120, 144, 156),
    (212, 225, 87),
    (126, 87, 194),
)


def frame_size(width: int, height: int) -> tuple[int, int]:
    return width * CELL, height * CELL + HEADER


@cache
def _agent_sprite(index: int) -> pygame.Surface:
    tinted = sprite("agent", CELL - 6).copy()
    colour = AGENT_COLOURS[index % len(AGENT_COLOURS)]
    tinted.fill((*colour, 255), special_flags=pygame.BLEND_RGBA_MULT)
    return tinted


def _cell_rect(core: TrashCollectionCore, cell: int, margin: int = 0) -> pygame.Rect:
    x, y = cell % core.width, cell // core.width
    top = HEADER + (core.height - 1 - y) * CELL
    return pygame.Rect(x * CELL + margin, top + margin, CELL - 2 * margin, CELL - 2 * margin)


def draw(core: TrashCollectionCore, surface: pygame.Surface, index: int, episode_return: float) -> None:
    """Draw copy ``index`` of ``core`` onto ``surface``."""
    surface.fill(FLOOR)
    for cell in range(core.n_cells):
        pygame.draw.rect(surface, GRID_LINE, _cell_rect(core, cell), 1)
    for cell in map(int, core.walls[index].nonzero()[0]):
        surface.blit(sprite("wall", CELL), _cell_rect(core, cell))
    label_font = font(CELL // 4)
    for dump, cell in enumerate(map(int, core.dump_cell[index])):
        rect = _cell_rect(core, cell)
        if core.dump_in_wall[dump]:
            surface.blit(sprite("wall", CELL), rect)
        surface.blit(sprite("dump", CELL - 8), rect.move(4, 4))
        dumped = int((core.trash_dump[index] == dump).sum())
        text = label_font.render(f"{dump}:{dumped}", True, (255, 255, 255), (30, 90, 50))
        surface.blit(text, (rect.left + 2, rect.top + 2))
    on_floor = core.trash_on_floor()[index]
    for cell in map(int, core.trash_cell[index][on_floor]):
        surface.blit(sprite("trash", CELL - 12), _cell_rect(core, cell, 6))
    number_font = font(CELL // 3)
    for agent, cell in enumerate(map(int, core.pos[index])):
        rect = _cell_rect(core, cell)
        surface.blit(_agent_sprite(agent), rect.move(3, 3).topleft)
        number = number_font.render(str(agent), True, (20, 20, 20))
        surface.blit(number, number.get_rect(center=(rect.centerx, rect.centery + 8)))
        if core.carrying[index, agent] >= 0:
            surface.blit(sprite("trash", CELL // 2), (rect.right - CELL // 2, rect.top))
    header = pygame.Rect(0, 0, surface.get_width(), HEADER)
    pygame.draw.rect(surface, HEADER_BACKGROUND, header)
    status = (
        f"{core.layout_name}   step {int(core.t[index])}/{core.max_cycles}   "
        f"dumped {int(core.dumped[index])}/{core.n_trash}   score {episode_return:.2f}"
    )
    text = font(16).render(status, True, HEADER_TEXT)
    surface.blit(text, text.get_rect(midleft=(10, HEADER // 2)))
