"""Vanilla GAN (Goodfellow et al. 2014): MLP generator and discriminator, on 2D points or
flattened images; ``loss=minimax`` is the original objective, ``nonsaturating`` the default."""
from __future__ import annotations

from ..models.mlp import MLPDiscriminator, MLPGenerator
from .base import RECIPES
from .gan import GANRecipe


@RECIPES.register("vanilla")
class VanillaGAN(GANRecipe):
    """Goodfellow et al. 2014: MLP G and D, minimax or non-saturating loss."""

    def __post_init__(self) -> None:
        super().__post_init__()
        n, shape = self.cfg.net, self.data.shape
        self.nets = {
            "G": MLPGenerator(n.z_dim, shape, n.width, n.depth, tanh=self.data.kind == "image"),
            "D": MLPDiscriminator(shape, n.width, n.depth),
        }
