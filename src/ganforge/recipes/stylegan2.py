"""StyleGAN2 (Karras et al. 2020) on the shared two-player game of :class:`GANRecipe`.

Phases per step (StyleGAN2-ADA's loss, in this engine's order):

* ``D``: non-saturating loss on real and G(z) (``loss``), with ADA or DiffAugment when configured;
* ``Dreg`` every ``reg.lazy_every`` steps: R1 with gamma * interval (lazy regularization);
* ``G``: non-saturating loss on D(G(z)) of the batch the D phase made;
* ``Greg`` every ``style.pl_every`` steps: path length regularization, (|J_w^T y| - a)^2 with y
  image-sized Gaussian noise / sqrt(H W) and a the running mean of the lengths (kept in G's buffer
  ``pl_mean``, saved with the weights), weighted by ``style.pl_weight * pl_every``.

Training batches use style mixing (with probability ``style.mixing`` a second z takes over the
styles from a random layer on) and per-pixel noise drawn from the trainer's generator, so a
resumed run continues exactly; sampling uses each layer's fixed noise buffer. Adam's learning
rate and betas are corrected for the lazy intervals as in the paper (lr * c, beta ** c,
c = k / (k + 1)). Class-conditional when the data has labels (``style.conditional``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import TrainConfig, config_section
from ..errors import ConfigError
from ..models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from ..nn import log2_resolution
from .base import RECIPES, Phase, Stats, StepContext, Tensor
from .gan import GANRecipe

STYLE_CHECKS = {
    "w_dim": (lambda v: v >= 1, "an integer >= 1"),
    "map_layers": (lambda v: v >= 1, "an integer >= 1"),
    "lr_mul": (lambda v: v > 0, "a number > 0"),
    "mixing": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "pl_weight": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "pl_every": (lambda v: v >= 1, "an integer >= 1"),
    "pl_decay": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "pl_batch_shrink": (lambda v: v >= 1, "an integer >= 1"),
}


@config_section("style", STYLE_CHECKS)
@dataclass
class StyleConfig:
    """StyleGAN2 (recipes/stylegan2.py); net.z_dim, net.width and net.max_channels size it as well."""

    w_dim: int = 256  # intermediate latent size (512 in the paper)
    map_layers: int = 8  # mapping network depth
    lr_mul: float = 0.01  # mapping network learning-rate multiplier
    mixing: float = 0.9  # probability of style mixing regularization per batch
    pl_weight: float = 2.0  # path length regularization weight; 0: off
    pl_every: int = 4  # lazy path length regularization interval
    pl_decay: float = 0.01  # running mean of path lengths
    pl_batch_shrink: int = 2  # path length batch = batch_size / this
    conditional: bool = True  # condition on labels when the data has classes (label embedding into mapping)


@RECIPES.register("stylegan2")
class StyleGAN2(GANRecipe):
    """Karras et al. 2020: mapping network, modulated convs, noise, skip G, residual D, lazy R1 and path length."""

    has_styles = True

    def __post_init__(self) -> None:
        self.conditional = bool(self.data.num_classes) and self.cfg.style.conditional
        super().__post_init__()

    @classmethod
    def student_values(cls, cfg: TrainConfig, width: float) -> dict:
        """A student keeps the teacher's mapping network (``distill.inherit``) and is distilled for the first half
        of its steps (``distill.fade``): a quarter-width student's fd 3.44 -> 1.81 (benchmarks/RESULTS.md)."""
        return {**super().student_values(cfg, width), "distill": {"inherit": True, "fade": 0.5}}

    def build_nets(self) -> dict[str, nn.Module]:
        if self.data.kind != "image":
            raise ConfigError(f"recipe stylegan2 needs image data; {self.data.name!r} is 2D points "
                              "(use --recipe vanilla)")
        n, s, (c, h, w) = self.cfg.net, self.cfg.style, self.data.shape
        if h != w:
            raise ConfigError(f"recipe stylegan2 needs square images; the data is {h}x{w}")
        log2_resolution(h, 8, 1024)  # a one-line error naming the allowed sizes
        k = self.data.num_classes if self.conditional else 0
        return {
            "G": StyleGAN2Generator(n.z_dim, h, c, n.generator_width, n.max_channels, s.w_dim, s.map_layers, k,
                                    s.lr_mul),
            "D": StyleGAN2Discriminator(h, self.d_shape[0], n.width, n.max_channels, self.cfg.reg.mbstd, k),
        }

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o, reg, s = self.cfg.optim, self.cfg.reg, self.cfg.style

        def adam(net: nn.Module, lr: float, every: int) -> torch.optim.Optimizer:
            c = every / (every + 1) if every > 1 else 1.0  # lazy regularization's correction
            return torch.optim.Adam(net.parameters(), lr=lr * c, betas=(o.beta1**c, o.beta2**c), eps=1e-8,
                                    foreach=True)

        self.optimizers = {
            "G": adam(self.nets["G"], o.lr_g, s.pl_every if s.pl_weight else 1),
            "D": adam(self.nets["D"], o.lr_d, reg.lazy_every if (reg.r1 or reg.r2) else 1),
        }
        return self.optimizers

    def phases(self) -> list[Phase]:
        phases = super().phases()
        s = self.cfg.style
        if s.pl_weight:
            phases.append(Phase("Greg", self.pl_step, updates="G", every=s.pl_every))
        return phases

    # ------------------------------------------------------------------ latents and styles
    @property
    def one_hot_code(self) -> int:
        return 0  # z is all normal: a class is a label, embedded in the mapping network

    def latent(self, n: int, gen: torch.Generator | None, device: torch.device,
               truncation: float | None = None) -> Tensor:
        if truncation is not None and not truncation >= 0:
            raise ConfigError(f"truncation={truncation} is not allowed for stylegan2; expected psi >= 0 "
                              "(1: none, 0: the average image)")
        return torch.randn(n, self.cfg.net.z_dim, generator=gen, device=device)  # truncation acts on w

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None,
                 truncation: float | None = None) -> Tensor:
        return G(z, labels if self.conditional else None, truncation)

    def styles(self, G: nn.Module, ws: Tensor, noise: list[Tensor] | None = None) -> Tensor:
        """Images from per-layer styles ``[N, num_ws, w_dim]`` (style mixing, walks in w)."""
        return G.synthesis(ws, noise)

    def train_ws(self, ctx: StepContext, z: Tensor, labels: Tensor | None) -> Tensor:
        """Per-layer styles of a training batch: w of z, with the styles from a random layer on
        taken from a second z with probability ``style.mixing`` (drawn on the device, no sync)."""
        G, labels = self.nets["G"], labels if self.conditional else None
        ws = G.broadcast(G.mapping(z, labels, update_avg=True))
        if not self.cfg.style.mixing:
            return ws
        z2 = self.train_latent(ctx, len(z))
        ws2 = G.broadcast(G.mapping(z2, labels))
        n = G.num_ws
        cutoff = torch.randint(1, n, (), generator=ctx.gen, device=ctx.gen.device)
        mix = torch.rand((), generator=ctx.gen, device=ctx.gen.device) < self.cfg.style.mixing
        cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, n))
        layer = torch.arange(n, device=ws.device).view(1, n, 1)
        return torch.where(layer < cutoff, ws, ws2)

    def train_noise(self, ctx: StepContext, n: int) -> list[Tensor]:
        """Per-pixel noise for every layer, drawn for the global batch (each rank keeps its slice)."""
        return [ctx.local(ctx.noise((shape[0] * ctx.world_size, *shape[1:])))
                for shape in self.nets["G"].synthesis.noise_shapes(n)]

    def train_fake(self, ctx: StepContext, z: Tensor, labels: Tensor | None) -> Tensor:
        return self.styles(self.nets["G"], self.train_ws(ctx, z, labels), self.train_noise(ctx, len(z)))

    # ------------------------------------------------------------------ path length
    def pl_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        s, G = self.cfg.style, self.nets["G"]
        n = max(1, ctx.batch_size // s.pl_batch_shrink)
        labels = ctx.cache.get("real_labels")
        if labels is None and self.conditional:
            labels = ctx.real()[1]
        labels = None if labels is None else labels[:n]
        z = self.train_latent(ctx, n)
        with torch.autocast(ctx.gen.device.type, enabled=False):  # squared gradients: fp32
            ws = self.train_ws(ctx, z, labels)
            img = self.styles(G, ws, self.train_noise(ctx, n)).float()
            h, w = img.shape[2:]
            y = ctx.local(ctx.noise((n * ctx.world_size, *img.shape[1:]))) / (h * w) ** 0.5
            (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()  # [n]
            with torch.no_grad():
                G.pl_mean.lerp_(lengths.mean().detach(), s.pl_decay)
            penalty = (lengths - G.pl_mean).square().mean()
        return penalty * s.pl_weight * s.pl_every, {"Loss/G/pl": penalty.detach(), "G/pl_mean": G.pl_mean.clone()}
