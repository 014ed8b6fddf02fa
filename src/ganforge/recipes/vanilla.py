"""Vanilla GAN (Goodfellow et al. 2014): MLP generator and discriminator, on 2D points or
flattened images; ``loss=minimax`` is the original objective, ``nonsaturating`` the default."""
from __future__ import annotations

import torch.nn as nn

from ..models.mlp import MLPDiscriminator, MLPGenerator
from .base import RECIPES
from .gan import GANRecipe


@RECIPES.register("vanilla")
class VanillaGAN(GANRecipe):
    """Goodfellow et al. 2014: MLP G and D, minimax or non-saturating loss."""

    def build_nets(self) -> dict[str, nn.Module]:
        n, shape = self.cfg.net, self.data.shape
        return {
            "G": MLPGenerator(self.latent_dim, shape, n.width, n.depth, tanh=self.data.kind == "image"),
            "D": MLPDiscriminator(self.d_shape, n.width, n.depth, self.cfg.reg.mbstd),
        }
