"""The two-player adversarial game shared by every unconditional G/D recipe.

Phase ``D``: draw real x and z, make G(z) once, minimise the discriminator loss on
(x, G(z).detach()). Phase ``G``: minimise the generator loss on D(G(z)), reusing the fake
batch the D phase made, since G has not changed in between - one generator forward per step.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..augment import diff_augment, parse_policy
from ..errors import ConfigError
from ..losses import get_loss
from .base import Phase, Recipe, Stats, StepContext, Tensor, truncated_normal


class GANRecipe(Recipe):
    """Subclasses set ``self.nets = {"G": ..., "D": ...}`` in ``__post_init__``."""

    def __post_init__(self) -> None:
        self.loss = get_loss(self.cfg.loss)
        self.augment = parse_policy(self.cfg.augment)
        if self.augment and self.data.kind != "image":
            raise ConfigError(f"augment={self.cfg.augment!r} needs image data; {self.data.name!r} is 2D points")

    def discriminate(self, x: Tensor, ctx: StepContext) -> Tensor:
        """D's logits for a batch, through the differentiable augmentation when configured."""
        return self.nets["D"](diff_augment(x, self.augment, ctx.gen) if self.augment else x)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.cfg.optim
        return {
            "G": torch.optim.Adam(self.nets["G"].parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2)),
            "D": torch.optim.Adam(self.nets["D"].parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2)),
        }

    def phases(self) -> list[Phase]:
        return [
            Phase("D", self.d_step, updates="D", grads=("D", "G")),  # G keeps its graph for the G phase
            Phase("G", self.g_step, updates="G"),
        ]

    def train_latent(self, ctx: StepContext, n: int) -> Tensor:
        return ctx.noise((n, self.cfg.net.z_dim))

    def d_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        real, _ = ctx.real()  # [N, *shape]
        fake = self.nets["G"](self.train_latent(ctx, len(real)))
        ctx.cache["fake"] = fake
        real_logits, fake_logits = self.discriminate(real, ctx), self.discriminate(fake.detach(), ctx)
        loss = self.loss.d(real_logits, fake_logits)
        acc = 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
        return loss, {"Loss/D": loss.detach(), "D/real": real_logits.detach().mean(),
                      "D/fake": fake_logits.detach().mean(), "D/accuracy": acc.detach()}

    def g_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        fake = ctx.cache.pop("fake", None)
        if fake is None:  # no D phase ran this step (or it discarded its batch)
            fake = self.nets["G"](self.train_latent(ctx, ctx.batch_size))
        loss = self.loss.g(self.discriminate(fake, ctx))
        return loss, {"Loss/G": loss.detach()}

    def latent(self, n: int, gen: torch.Generator | None, device: torch.device,
               truncation: float | None = None) -> Tensor:
        return truncated_normal((n, self.cfg.net.z_dim), truncation, gen, device)

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return G(z)
