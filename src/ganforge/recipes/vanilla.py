"""Vanilla GAN (Goodfellow et al. 2014): MLP generator and discriminator, on 2D points or
flattened images; ``loss=minimax`` is the original objective, ``nonsaturating`` the default."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..models.mlp import MLPDiscriminator, MLPGenerator, Standardize
from .base import RECIPES, Tensor
from .gan import GANRecipe


@RECIPES.register("vanilla")
class VanillaGAN(GANRecipe):
    """Goodfellow et al. 2014: MLP G and D, minimax or non-saturating loss."""

    def build_nets(self) -> dict[str, nn.Module]:
        n, shape, points = self.cfg.net, self.data.shape, self.data.kind == "points"
        return {
            "G": MLPGenerator(self.latent_dim, shape, n.width, n.depth, tanh=not points, standardize=points),
            "D": MLPDiscriminator(self.d_shape, n.width, n.depth, self.cfg.reg.mbstd, standardize=points),
        }

    def fit_data(self, x: Tensor) -> None:
        """Points: G and D work in standardized coordinates fitted here, and G starts with samples
        spread like the data (see models/mlp.py)."""
        if self.data.kind != "points":
            return
        for net, repeat in ((self.nets["G"], 1), (self.nets["D"], self.cfg.reg.pack)):
            for m in net.modules():
                if isinstance(m, Standardize):
                    m.fit(x, repeat)
        gen = torch.Generator().manual_seed(self.cfg.seed)
        self.nets["G"].calibrate(self.latent(4096, gen, x.device))

    def penalty_coords(self) -> tuple[Tensor, Tensor] | None:
        last = self.nets["G"].net[-1]
        return (last.center, last.scale) if isinstance(last, Standardize) else None
