"""A pygame canvas shared by the environments' renderers, and a GIF writer.

``rgb_array`` draws off screen and works headless (``SDL_VIDEODRIVER=dummy``);
``human`` opens a window paced at the environment's ``render_fps``. :func:`save_gif`
turns ``rgb_array`` frames of a rollout into an animated GIF.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame


def asset_path(*parts: str) -> str:
    """Path of a file shipped in ``hmarl.assets``."""
    return str(resources.files("hmarl.assets").joinpath(*parts))


@cache
def font(size: int) -> pygame.font.Font:
    """The package's font at ``size`` points."""
    if not pygame.font.get_init():
        pygame.font.init()
    return pygame.font.Font(asset_path("fonts", "DejaVuSans-Bold.ttf"), size)


@cache
def sprite(name: str, size: int) -> pygame.Surface:
    """The sprite ``assets/sprites/<name>.png`` scaled to ``size`` x ``size`` pixels."""
    image = pygame.image.load(asset_path("sprites", f"{name}.png"))
    return pygame.transform.smoothscale(image, (size, size))


class Canvas:
    """A drawing surface that is shown in a window or returned as an RGB frame."""

    def __init__(self, size: tuple[int, int], mode: str, fps: int, caption: str) -> None:
        self.mode = mode
        self.fps = fps
        if mode == "human":
            pygame.display.init()
            pygame.display.set_caption(caption)
            self._window = pygame.display.set_mode(size)
            self._clock = pygame.time.Clock()
        self.surface = pygame.Surface(size)

    def present(self) -> np.ndarray | None:
        """Show the surface (``human``) or return it as an (H, W, 3) uint8 array."""
        if self.mode == "human":
            pygame.event.pump()
            self._window.blit(self.surface, (0, 0))
            pygame.display.flip()
            self._clock.tick(self.fps)
            return None
        return np.ascontiguousarray(pygame.surfarray.pixels3d(self.surface).transpose(1, 0, 2))

    def close(self) -> None:
        if self.mode == "human":
            pygame.display.quit()


def save_gif(frames: Sequence[np.ndarray], path: str, fps: int = 10) -> None:
    """Write (H, W, 3) uint8 ``frames`` to ``path`` as a GIF looping at ``fps`` frames/s."""
    from PIL import Image

    if not frames:
        raise ValueError("save_gif needs at least one frame, got none")
    if fps < 1:
        raise ValueError(f"fps={fps} is out of range; it must be >= 1")
    images = [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
