"""DCGAN (Radford et al. 2015) on images of any power-of-two resolution from 8 to 128."""
from __future__ import annotations

from ..errors import ConfigError
from ..models.dcgan import DCGANDiscriminator, DCGANGenerator
from .base import RECIPES
from .gan import GANRecipe


@RECIPES.register("dcgan")
class DCGAN(GANRecipe):
    """Radford et al. 2015: convolutional G and D with batch norm."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data.kind != "image":
            raise ConfigError(f"recipe dcgan needs image data; {self.data.name!r} is 2D points (use --recipe vanilla)")
        n, (c, h, _) = self.cfg.net, self.data.shape
        self.nets = {
            "G": DCGANGenerator(n.z_dim, h, c, n.width, n.max_channels),
            "D": DCGANDiscriminator(h, c, n.width, n.max_channels),
        }
