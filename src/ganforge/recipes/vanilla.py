"""Vanilla GAN (Goodfellow et al. 2014): MLP generator and discriminator, on 2D points or
flattened images; ``loss=minimax`` is the original objective, ``nonsaturating`` the default."""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from ..data import Dataset
from ..models.mlp import MLPDiscriminator, MLPGenerator, Standardize
from .base import RECIPES, Tensor
from .gan import GANRecipe

# with prototypes, the MLP starts with 1 % of the data's spread around them: each code starts as a
# small blob on its anchor, and the continuous latent grows it to the mode's width
PROTOTYPE_SPREAD = 0.01


@RECIPES.register("vanilla")
class VanillaGAN(GANRecipe):
    """Goodfellow et al. 2014: MLP G and D, minimax or non-saturating loss."""
    default_for: ClassVar[tuple[str, ...]] = ("points",)

    def build_nets(self) -> dict[str, nn.Module]:
        n, shape, points = self.cfg.net, self.data.shape, self.data.kind == "points"
        return {
            "G": MLPGenerator(self.latent_dim, shape, n.generator_width, n.depth, tanh=not points, standardize=points,
                              prototypes=n.z_discrete if points else 0),
            "D": MLPDiscriminator(self.d_shape, n.width, n.depth, self.cfg.reg.mbstd, standardize=points),
        }

    def fit_data(self, data: Dataset) -> None:
        """Points: G and D work in standardized coordinates fitted here, and G starts with samples
        spread like the data: each discrete code on its own training sample (see models/mlp.py)."""
        if self.data.kind != "points":
            return
        x = data.to_model(data.x)
        for net, repeat in ((self.nets["G"], 1), (self.nets["D"], self.cfg.reg.pack)):
            for m in net.modules():
                if isinstance(m, Standardize):
                    m.fit(x, repeat)
        gen = torch.Generator().manual_seed(self.cfg.seed)
        G = self.nets["G"]
        spread = PROTOTYPE_SPREAD if G.prototypes is not None else 1.0
        G.calibrate(self.latent(4096, gen, x.device), x, gen, spread)

    def penalty_coords(self) -> tuple[Tensor, Tensor] | None:
        last = self.nets["G"].net[-1]
        return (last.center, last.scale) if isinstance(last, Standardize) else None
