"""What ``ganforge.load(run)`` returns for a video run: a sampler whose samples are clips ``[N, T, C, H, W]``.

Everything a sampler offers works on it (seeds, ``serve``, the demo page, export); ``with_frames`` draws clips
of another length (the recipe's motion is continuous in time), and ``interpolate`` walks between contents
with the first seed's motion held.
"""
from __future__ import annotations

from typing import Any, ClassVar

from .pipelines import Generator


class ClipSampler(Generator):
    """A trained video generator: ``ganforge.load(run).with_frames(32).sample(16)`` -> [16, 32, C, H, W]."""

    does = "samples clips from noise"
    pictures = "Clips (fixed latents), one a row, frames left to right"
    example = "sample clips with `ganforge sample {run} --n 16 --out clips.gif`"
    intended = "drawing short clips like the training clips: research and teaching on video generation"
    caveats: ClassVar[tuple[str, ...]] = ("clips are as short and small as the training clips; longer ones "
                                          "(--frames) repeat the learned motion",)

    @property
    def frames(self) -> int:
        return self.recipe.frames

    def with_frames(self, frames: int | None) -> ClipSampler:
        """Draw clips ``frames`` long from now on (None: as trained). Returns self."""
        self.recipe.set_frames(frames)
        return self

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "frames": self.frames}
