"""Draw the trash-collection sprites with pygame and save them as 64x64 PNGs here.

Run ``python assets/sprites/make_sprites.py`` to regenerate them; the PNGs are
committed so that rendering never depends on this script. The agent is drawn in
light grey so that the renderer can tint it with each agent's colour.
"""

from __future__ import annotations

import os
from collections.abc import Callable

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

SIZE = 64
HERE = os.path.dirname(os.path.abspath(__file__))
OUTLINE = (40, 40, 48)


def agent(surface: pygame.Surface) -> None:
    """A round robot seen from above: body, visor and two eyes."""
    pygame.draw.circle(surface, OUTLINE, (32, 34), 27)
    pygame.draw.circle(surface, (235, 235, 235), (32, 34), 24)
    pygame.draw.rect(surface, OUTLINE, (14, 20, 36, 16), border_radius=8)
    pygame.draw.circle(surface, (120, 230, 255), (24, 28), 5)
    pygame.draw.circle(surface, (120, 230, 255), (40, 28), 5)
    pygame.draw.line(surface, OUTLINE, (32, 7), (32, 2), 3)
    pygame.draw.circle(surface, (255, 90, 90), (32, 3), 3)


def trash(surface: pygame.Surface) -> None:
    """A tied garbage bag."""
    pygame.draw.ellipse(surface, OUTLINE, (8, 18, 48, 42))
    pygame.draw.ellipse(surface, (96, 104, 92), (11, 21, 42, 36))
    pygame.draw.polygon(surface, OUTLINE, [(24, 20), (40, 20), (46, 6), (32, 14), (18, 6)])
    pygame.draw.polygon(surface, (120, 128, 112), [(26, 19), (38, 19), (42, 10), (32, 16), (22, 10)])
    pygame.draw.arc(surface, (150, 160, 140), (18, 28, 20, 20), 1.6, 3.0, 3)


def dump(surface: pygame.Surface) -> None:
    """A green wheelie bin with a recycling mark."""
    pygame.draw.rect(surface, OUTLINE, (9, 14, 46, 46), border_radius=6)
    pygame.draw.rect(surface, (46, 160, 80), (12, 17, 40, 40), border_radius=5)
    pygame.draw.rect(surface, OUTLINE, (5, 6, 54, 11), border_radius=4)
    pygame.draw.rect(surface, (36, 130, 64), (8, 8, 48, 7), border_radius=3)
    pygame.draw.polygon(surface, (230, 250, 235), [(32, 26), (22, 44), (42, 44)], 3)


def wall(surface: pygame.Surface) -> None:
    """Brickwork filling the whole cell."""
    surface.fill((150, 82, 62))
    mortar = (205, 190, 170)
    for row in range(4):
        y = row * 16
        pygame.draw.line(surface, mortar, (0, y), (SIZE, y), 2)
        shift = 0 if row % 2 == 0 else 16
        for x in range(shift, SIZE + 32, 32):
            pygame.draw.line(surface, mortar, (x, y), (x, y + 16), 2)


SPRITES: dict[str, Callable[[pygame.Surface], None]] = {
    "agent": agent,
    "trash": trash,
    "dump": dump,
    "wall": wall,
}


def main() -> None:
    for name, draw in SPRITES.items():
        surface = pygame.Surface((SIZE, SIZE), pygame.SRCALPHA)
        draw(surface)
        pygame.image.save(surface, os.path.join(HERE, f"{name}.png"))
        print(f"wrote {name}.png")


if __name__ == "__main__":
    main()
