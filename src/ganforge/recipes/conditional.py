"""Class-conditional GANs: cGAN, the projection discriminator, AC-GAN.

All three draw fake labels equal to the real batch's labels (so generated classes follow
the data's class mix) and sample uniformly over classes when asked for no label.
"""
from __future__ import annotations

from typing import ClassVar

import torch.nn as nn

from ..errors import ConfigError
from ..models.conditional import conditional_nets
from .base import RECIPES, Tensor
from .gan import GANRecipe


class ConditionalGAN(GANRecipe):
    mode = "concat"

    def __post_init__(self) -> None:
        self.conditional = True
        super().__post_init__()

    def build_nets(self) -> dict[str, nn.Module]:
        if not self.data.num_classes:
            raise ConfigError(f"recipe {self.cfg.recipe} needs labelled data; {self.data.name!r} has no classes "
                              "(use digits, stacked-digits, a folder with class subfolders, mnist, ...; or --recipe "
                              "selfcond, which finds clusters in unlabelled images)")
        n = self.cfg.net
        G, D = conditional_nets(self.data.shape, self.data.kind, self.data.num_classes, self.mode, self.latent_dim,
                                n.width, n.depth, n.max_channels, n.upsample, n.generator_width)
        return {"G": G, "D": D}


@RECIPES.register("cgan")
class CGAN(ConditionalGAN):
    """Mirza & Osindero 2014: the label embedding concatenated to z in G and to D's input."""
    default_for: ClassVar[tuple[str, ...]] = ("digits",)  # labelled: beats every unconditional candidate (RESULTS)

    mode = "concat"


@RECIPES.register("projection")
class ProjectionGAN(ConditionalGAN):
    """Miyato & Koyama 2018: projection discriminator, class-conditional batch norm in G."""

    mode = "projection"


@RECIPES.register("acgan")
class ACGAN(ConditionalGAN):
    """Odena et al. 2017: D also classifies; both players minimise the class cross-entropy."""

    mode = "acgan"

    def class_targets(self, z: Tensor, real_labels: Tensor | None,
                      fake_labels: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        return real_labels, fake_labels

    def class_weight(self) -> float:
        return 1.0
