"""The variational autoencoder (Kingma & Welling 2014), the likelihood baseline GANs are compared with.

One phase per step minimises the negative ELBO per image, in nats:

    E_q[-log p(x | z)] + w(step) * KL(q(z | x) || N(0, I)),

with the reparameterised sample z = mu + sigma * eps (eps from the trainer's generator, so a
resumed run continues exactly) and the closed-form Gaussian KL. ``w`` ramps linearly from 0 to
``vae.beta`` over the first ``vae.warmup`` of the steps (KL warm-up, Bowman et al. 2016), which
keeps the posterior from collapsing onto the prior before the decoder learns anything.
Samples decode prior draws z ~ N(0, I) to the likelihood's mean; ``reconstructions`` shows
how well the encoder-decoder pair keeps an image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import config_section
from ..errors import ConfigError
from ..models.vae import ConvVAE
from ..nn import log2_resolution
from .base import RECIPES, Phase, Recipe, Stats, StepContext, Tensor, truncated_normal

VAE_CHECKS = {
    "likelihood": (lambda v: v in ("bernoulli", "gaussian"), "bernoulli or gaussian"),
    "beta": (lambda v: v >= 0, "a number >= 0"),
    "warmup": (lambda v: 0 <= v <= 1, "a number in [0, 1] (0: no warm-up)"),
    "sigma": (lambda v: v >= 0, "a number >= 0 (0: learned)"),
}


@config_section("vae", VAE_CHECKS)
@dataclass
class VAEConfig:
    """The variational autoencoder (recipes/vae.py); net.z_dim, net.width and net.max_channels size it."""

    likelihood: str = "bernoulli"  # bernoulli (pixels as probabilities) | gaussian
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017); 1: the ELBO
    warmup: float = 0.1  # the KL weight ramps linearly from 0 to beta over this fraction of the steps; 0: off
    sigma: float = 0.0  # gaussian: the fixed standard deviation in model space [-1, 1]; 0: learned (sigma-VAE)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row: [N, D] -> [N]."""
    return 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)


@RECIPES.register("vae")
class VAE(Recipe):
    """Kingma & Welling 2014: a convolutional VAE on the DCGAN backbones, Bernoulli or Gaussian, KL warm-up."""
    adversarial: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.data.kind != "image":
            raise ConfigError(f"recipe vae needs image data; {self.data.name!r} is 2D points (use --recipe vanilla)")
        n, v, (c, h, w) = self.cfg.net, self.cfg.vae, self.data.shape
        if h != w:
            raise ConfigError(f"recipe vae needs square images; the data is {h}x{w}")
        log2_resolution(h)
        self.nets = {"G": ConvVAE(n.z_dim, h, c, n.generator_width, n.max_channels, n.upsample, v.likelihood, v.sigma)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.cfg.optim
        return {"G": torch.optim.Adam(self.nets["G"].parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))}

    def phases(self) -> list[Phase]:
        return [Phase("G", self.elbo_step, updates="G")]

    def kl_weight(self, step: int) -> float:
        v = self.cfg.vae
        ramp = v.warmup * self.cfg.steps
        return v.beta * (min(1.0, step / ramp) if ramp > 0 else 1.0)

    def nll(self, G: ConvVAE, raw: Tensor, x: Tensor) -> Tensor:
        """-log p(x | z) per image in nats, for the decoder's raw output and images in model space."""
        raw = raw.float()
        if G.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(raw, (x.float() + 1) / 2, reduction="none").flatten(1).sum(1)
        log_sigma = G.log_sigma.float()
        z = (x.float() - torch.tanh(raw)) / log_sigma.exp()
        return (0.5 * z.square() + log_sigma + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)

    def elbo_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        G: ConvVAE = self.nets["G"]
        x, _ = ctx.real()
        mu, logvar = G.encode(x)
        mu, logvar = mu.float(), logvar.float()
        eps = ctx.local(ctx.noise((len(x) * ctx.world_size, G.z_dim)))
        z = mu + eps * (0.5 * logvar).exp()
        nll, kl = self.nll(G, G.decode_raw(z), x), gaussian_kl(mu, logvar)
        weight = self.kl_weight(ctx.step)
        stats = {"Loss/nll": nll.mean().detach(), "Loss/kl": kl.mean().detach(),
                 "Loss/nelbo": (nll + kl).mean().detach(), "VAE/kl_weight": torch.full((), weight, device=x.device)}
        if G.likelihood == "gaussian":
            stats["VAE/sigma"] = G.log_sigma.detach().exp()
        return (nll + weight * kl).mean(), stats

    def latent(self, n: int, gen: torch.Generator | None, device: torch.device,
               truncation: float | None = None) -> Tensor:
        return truncated_normal((n, self.cfg.net.z_dim), truncation, gen, device)

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None,
                 truncation: float | None = None) -> Tensor:
        return G(z)

    def sampling_network(self, G: nn.Module) -> nn.Module:
        return G.decoder

    def reconstructions(self, G: nn.Module, x: Tensor) -> Tensor:
        """The decoded posterior means of images in model space (how much of an image the code keeps)."""
        return G.mean(G.decode_raw(G.encode(x)[0]))
