"""DCGAN (Radford et al. 2015) on images of any power-of-two resolution from 8 to 128."""
from __future__ import annotations

from typing import ClassVar

import torch.nn as nn

from ..errors import ConfigError
from ..models.dcgan import DCGANDiscriminator, DCGANGenerator
from .base import RECIPES
from .gan import GANRecipe


@RECIPES.register("dcgan")
class DCGAN(GANRecipe):
    """Radford et al. 2015: convolutional G and D with batch norm."""
    default_for: ClassVar[tuple[str, ...]] = ("*",)  # any image data no other recipe claims
    why_default: ClassVar[str] = "the unconditional DCGAN (image data no other recipe claims)"

    def build_nets(self) -> dict[str, nn.Module]:
        if self.data.kind != "image":
            raise ConfigError(f"recipe dcgan needs image data; {self.data.name!r} is 2D points (use --recipe vanilla)")
        n, (c, h, _) = self.cfg.net, self.data.shape
        return {
            "G": DCGANGenerator(self.latent_dim, h, c, n.generator_width, n.max_channels, n.upsample),
            "D": DCGANDiscriminator(h, self.d_shape[0], n.width, n.max_channels, self.cfg.reg.mbstd),
        }
