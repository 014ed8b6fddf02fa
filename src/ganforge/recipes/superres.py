"""Super-resolution GANs on the shared engine: SRGAN (Ledig et al. 2017) and ESRGAN (Wang et al. 2018).

One run, two stages, both in ``steps``:

1. PSNR-oriented (steps < ``sr.pretrain``): phase ``G`` minimises the pixel loss (``sr.pixel``, L1
   or L2) between G(LR) and HR. At the first step of stage 2 the finished generator - its EMA, the
   weights the trainer samples with, or G itself when EMA is off - is copied to ``G_psnr`` (its
   buffer ``taken_at`` records the step), saved with the weights and never trained again; a run
   that never reached stage 2 has no copy, and its G is both models.
2. GAN (from ``sr.pretrain`` on): phase ``D`` judges HR patches against G(LR) with the run's loss
   (``nonsaturating`` for SRGAN, ``ragan`` - relativistic average - for ESRGAN), then phase ``G``
   minimises ``perceptual_weight`` x content + ``pixel_weight`` x pixel + ``adv_weight`` x
   adversarial, reusing the D phase's G(LR).

The content loss is L1 between feature maps (``sr.perceptual``): ``vgg19:PATH`` uses a local file
of torchvision's VGG19 weights (conv5_4 before its ReLU, ESRGAN's choice; ImageNet weights cannot
be downloaded here); offline the default ``disc`` uses the discriminator's own stage activations
(feature matching, as pix2pixHD does), the real patch's detached; ``none`` turns it off.

Each batch: HR patches are flipped and transposed at random (the 8 symmetries of a square), then
LR inputs are made by :func:`ganforge.data.superres.degrade` with a random blur (up to ``sr.blur``)
and noise (up to ``sr.noise``) when configured; all randomness comes from the trainer's generator
for the global batch. ``ganforge upscale --blend a`` interpolates G_psnr (the EMA at the end of
stage 1) and the EMA of the GAN stage's G, weight by weight (ESRGAN's network interpolation).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import TrainConfig, config_section
from ..data.run_data import RunData
from ..data.superres import bicubic_up, degrade
from ..errors import ConfigError
from ..inference.pipelines import Upscaler
from ..losses import get_loss
from ..models.superres import RRDBNet, SRResNet, VGGDiscriminator
from ..runs import checkpoint as ck
from .base import RECIPES, Phase, Shards, Stats, StepContext, Tensor
from .translation import TranslationRecipe

SR_CHECKS = {
    "scale": (lambda v: v in (2, 4), "2 or 4"),
    "pretrain": (lambda v: v >= 0, "an integer >= 0 (0: no PSNR-oriented stage)"),
    "pixel": (lambda v: v in ("l1", "l2"), "l1 or l2"),
    "pixel_weight": (lambda v: v >= 0, "a number >= 0"),
    "perceptual": (lambda v: v in ("disc", "none") or (v.startswith("vgg19:") and len(v) > 6),
                      "disc, none or vgg19:PATH (a local torchvision VGG19 weights file)"),
    "perceptual_weight": (lambda v: v >= 0, "a number >= 0"),
    "adv_weight": (lambda v: v >= 0, "a number >= 0"),
    "blocks": (lambda v: v >= 1, "an integer >= 1"),
    "growth": (lambda v: v >= 1, "an integer >= 1"),
    "d_width": (lambda v: v >= 1, "an integer >= 1"),
    "blur": (lambda v: v >= 0, "a number >= 0 (0: no blur)"),
    "noise": (lambda v: 0 <= v <= 1, "a number in [0, 1] (0: no noise)"),
}


@config_section("sr", SR_CHECKS)
@dataclass
class SRConfig:
    """Super-resolution: SRGAN and ESRGAN (recipes/superres.py); ``resolution`` is the HR patch side."""

    scale: int = 4  # upscaling factor: 2 or 4
    pretrain: int = 2000  # PSNR-oriented steps before the GAN stage (part of `steps`)
    pixel: str = "l1"  # l1 | l2: the PSNR stage's loss, and the GAN stage's pixel term
    pixel_weight: float = 0.01  # GAN stage: weight of the pixel term (ESRGAN's eta)
    perceptual: str = "disc"  # content loss features: disc (the discriminator's own) | none | vgg19:PATH
    perceptual_weight: float = 1.0  # GAN stage: weight of the content loss
    adv_weight: float = 0.005  # GAN stage: weight of the adversarial term (SRGAN 1e-3, ESRGAN 5e-3)
    blocks: int = 8  # residual blocks (srgan) or RRDBs (esrgan)
    growth: int = 16  # esrgan: channels added by each conv of a dense block
    d_width: int = 16  # discriminator channels at full resolution (doubling per stage); net.width sizes G
    norm: bool = False  # srgan: batch norm in the residual blocks (the paper's; off in EDSR / ESRGAN)
    residual: bool = True  # G adds its output to the bicubic upsampling (learns the missing detail)
    blur: float = 0.0  # degradation: Gaussian blur of sigma up to this (HR px) before downsampling; 0: none
    noise: float = 0.0  # degradation: Gaussian noise of std up to this (in [0, 1] units) on the LR image; 0: none
    flip: bool = True  # random flips and transposition of training patches

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGGFeatures(nn.Module):
    """torchvision's VGG19 up to conv5_4 (before its ReLU), weights from a local file, frozen."""

    def __init__(self, path: str) -> None:
        super().__init__()
        from pathlib import Path

        import torchvision

        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"sr.perceptual=vgg19:{path}: no such file; give a local torchvision VGG19 weights file "
                              "(.safetensors, or .pth read with weights_only=True)")
        vgg = torchvision.models.vgg19(weights=None)
        try:
            if p.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(p))
            else:
                state = torch.load(str(p), map_location="cpu", weights_only=True)  # never unpickles objects
            vgg.load_state_dict(state)
        except Exception as e:  # pickles of whole models, damaged files, other networks' weights
            raise ConfigError(f"sr.perceptual=vgg19:{path} is not a torchvision VGG19 state dict "
                              f"({str(e).splitlines()[0][:100]})") from None
        self.net = vgg.features[:35].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> list[Tensor]:  # model space [-1, 1]
        return [self.net(((x + 1) / 2 - self.mean) / self.std)]


class SRRecipe(TranslationRecipe):
    """Shared by SRGAN and ESRGAN: data, degradation, the two stages; subclasses pick the generator."""

    pipeline = Upscaler
    own_metrics: ClassVar[str | None] = "psnr, ssim, hf_ratio, hf_corr on Y, beside bicubic"
    default_data: ClassVar[str | None] = "sr:photos"

    def __post_init__(self) -> None:
        cfg, s = self.cfg, self.cfg.sr
        if not self.data.name.startswith("sr") or self.data.translation:
            raise ConfigError(f"{cfg.recipe} learns from high-resolution images; --data {self.data.name!r} is not "
                              "super-resolution data: use sr:photos or sr:folder:PATH")
        side = self.data.shape[-1]
        if side % s.scale or side // s.scale < 4:
            raise ConfigError(f"resolution {side} (the HR patch side) must be a multiple of sr.scale={s.scale} "
                              f"with LR patches of at least 4 px")
        self.loss = get_loss(cfg.loss)
        G = self.build_generator()
        self.nets = {"G": G, "G_psnr": copy.deepcopy(G).requires_grad_(False),
                     "D": VGGDiscriminator(side, 3, s.d_width, cfg.net.max_channels)}
        if s.blur > (side - 1) / 6:
            raise ConfigError(f"sr.blur={s.blur} is too wide for {side} px patches; expected at most "
                              f"{(side - 1) / 6:.1f}")
        self.content: nn.Module | None = None  # VGG19 features: read by build_optimizers (training only)

    def build_generator(self) -> nn.Module:
        raise NotImplementedError

    def check_steps(self, steps: int) -> None:
        s = self.cfg.sr
        if s.pretrain > steps:
            raise ConfigError(f"sr.pretrain={s.pretrain} is more than steps={steps}; the GAN stage would never "
                              "start (sr.pretrain=steps trains the PSNR-oriented model alone)")

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Training only (loading a run for inference never calls this): the VGG19 file is read here."""
        kind, _, path = self.cfg.sr.perceptual.partition(":")
        if kind == "vgg19":
            self.content = VGGFeatures(path)
        return super().build_optimizers()

    @property
    def scale(self) -> int:
        return self.cfg.sr.scale

    def phases(self) -> list[Phase]:
        gan = self.cfg.sr.pretrain
        return [Phase("D", self.d_step, updates="D", grads=("D", "G"), active=lambda step: step >= gan),
                Phase("G", self.g_step, updates="G")]

    # ------------------------------------------------------------------ a batch
    def augment(self, hr: Tensor, ctx: StepContext) -> Tensor:
        """Random flips and transposition per patch (drawn for the global batch)."""
        if not self.cfg.sr.flip:
            return hr
        coins = ctx.local(torch.rand(len(hr) * ctx.world_size, 3, generator=ctx.gen, device=ctx.gen.device)) < 0.5
        for i, op in enumerate((lambda x: x.flip(-1), lambda x: x.flip(-2), lambda x: x.transpose(-1, -2))):
            hr = torch.where(coins[:, i].view(-1, 1, 1, 1), op(hr), hr)
        return hr.contiguous()

    def low_res(self, hr: Tensor, ctx: StepContext | None = None) -> Tensor:
        """LR inputs in model space for HR patches in model space: degraded at random in training
        (``ctx``), plain bicubic otherwise."""
        s, n = self.cfg.sr, len(hr)
        blur = noise = None
        if ctx is not None and s.blur > 0:  # the kernel's size from the bound: alike on every rank
            blur = ctx.local(torch.rand(n * ctx.world_size, generator=ctx.gen, device=ctx.gen.device)) * s.blur
        if ctx is not None and s.noise > 0:
            h, w = hr.shape[-2] // s.scale, hr.shape[-1] // s.scale
            std = ctx.local(torch.rand(n * ctx.world_size, generator=ctx.gen, device=ctx.gen.device)) * s.noise
            noise = std.view(-1, 1, 1, 1) * ctx.local(ctx.noise((n * ctx.world_size, hr.shape[1], h, w)))
        return degrade((hr + 1) / 2, s.scale, blur, noise, max_blur=s.blur) * 2 - 1

    def batch(self, ctx: StepContext) -> tuple[Tensor, Tensor, Tensor]:
        hr = self.augment(ctx.real()[0], ctx)
        lr = self.low_res(hr, ctx)
        return hr, lr, self.nets["G"](lr)

    def pixel_loss(self, fake: Tensor, hr: Tensor) -> Tensor:
        d = fake.float() - hr.float()
        return d.abs().mean() if self.cfg.sr.pixel == "l1" else d.square().mean()

    def content_loss(self, fake: Tensor, hr: Tensor) -> Tensor:
        if self.content is not None:
            self.content.to(fake.device)
        features = self.content if self.content is not None else self.nets["D"].features
        with torch.no_grad():
            target = features(hr)
        return sum(F.l1_loss(a.float(), b.float()) for a, b in zip(features(fake), target)) / len(target)

    # ------------------------------------------------------------------ phases
    def d_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        hr, lr, fake = self.batch(ctx)
        ctx.cache.update(hr=hr, fake=fake)
        D = self.nets["D"]
        real_logits, fake_logits = D(hr), D(fake.detach())
        loss = self.loss.d(real_logits, fake_logits)
        if self.loss.g_uses_real:  # relativistic: D says which of a real and the average fake is more real
            r, f = real_logits - fake_logits.mean(), fake_logits - real_logits.mean()
        else:
            r, f = real_logits - self.loss.boundary, fake_logits - self.loss.boundary
        acc = ((r > 0).float().mean() + (f < 0).float().mean()).detach() / 2
        return loss, {"Loss/D": loss.detach(), "D/real": real_logits.detach().mean(),
                      "D/fake": fake_logits.detach().mean(), "D/accuracy": acc}

    @torch.no_grad()
    def take_psnr_copy(self, step: int, source: nn.Module | None = None) -> None:
        """G_psnr := ``source`` (the EMA of stage 1; G when EMA is off), buffers included, marked with the step."""
        source = self.nets["G"] if source is None else source
        for dst, src in zip(self.nets["G_psnr"].state_dict().values(), source.state_dict().values()):
            dst.copy_(src)
        self.nets["G_psnr"].taken_at.fill_(step)

    def g_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        s = self.cfg.sr
        if ctx.step == s.pretrain and s.pretrain > 0:
            self.take_psnr_copy(ctx.step, ctx.ema)  # the averaged G after the last PSNR-oriented step
        if "fake" in ctx.cache:
            hr, fake = ctx.cache.pop("hr"), ctx.cache.pop("fake")
        else:
            hr, _, fake = self.batch(ctx)
        pixel = self.pixel_loss(fake, hr)
        if ctx.step < s.pretrain:
            return pixel, {"Loss/G/pixel": pixel.detach()}
        D = self.nets["D"]
        fake_logits = D(fake)
        adv = self.loss.g(fake_logits, D(hr)) if self.loss.g_uses_real else self.loss.g(fake_logits)
        loss = s.pixel_weight * pixel + s.adv_weight * adv
        stats = {"Loss/G": adv.detach(), "Loss/G/pixel": pixel.detach()}
        if s.perceptual != "none" and s.perceptual_weight:
            content = self.content_loss(fake, hr)
            loss = loss + s.perceptual_weight * content
            stats["Loss/G/perceptual"] = content.detach()
        stats["Loss/G/total"] = loss.detach()
        return loss, stats

    # ------------------------------------------------------------------ after training
    @classmethod
    def intended_use(cls, cfg: TrainConfig) -> str:
        return cls.pipeline.intended.format(scale=cfg.sr.scale)

    def load_pipeline(self, weights: dict[str, dict[str, Tensor]], run_dir, ema: bool = True) -> Upscaler:
        """The GAN generator and the PSNR-oriented copy taken at the end of stage 1 (a run stopped before its
        GAN stage has none: the generator is both)."""
        G, psnr = self.load_generator(weights, ema), self.nets["G_psnr"]
        ck.load_into(psnr, weights.get("G_psnr"), "G_psnr")
        return Upscaler(self, G, self.data, run_dir, psnr if int(psnr.taken_at) >= 0 else None)

    def measure(self, G: nn.Module, data: RunData, names: list[str], n: int, seed: int, *,
                draw_seed: int | None = None, features: str | None = None, inception_weights: str | None = None,
                shards: Shards | None = None) -> dict | None:
        """Y-channel PSNR / SSIM and detail of whole held-out photos upscaled by tiles, beside bicubic."""
        from ..metrics.superres import run_metrics

        if shards is not None and not shards.is_main:
            return None
        return run_metrics(self, G, data.train.name)

    # ------------------------------------------------------------------ the sampling face
    def translate(self, G: nn.Module, x: Tensor, direction: str = "AtoB") -> Tensor:
        self.check_direction(direction)
        return G(x).clamp(-1, 1)

    def grid_source(self, x: Tensor) -> Tensor:
        return self.low_res(x)

    def columns(self, G: nn.Module, a: Tensor, b: Tensor) -> list[Tensor]:
        """bicubic | G(LR) | HR, at the HR size."""
        lr = self.low_res(a)
        return [bicubic_up((lr + 1) / 2, self.scale) * 2 - 1, self.translate(G, lr), a]


@RECIPES.register("srgan")
class SRGAN(SRRecipe):
    """Ledig et al. 2017: SRResNet G (no batch norm by default), VGG-style D, PSNR pre-train then GAN stage."""

    def build_generator(self) -> nn.Module:
        n, s = self.cfg.net, self.cfg.sr
        return SRResNet(3, n.generator_width, s.blocks, s.scale, s.norm, s.residual)


@RECIPES.register("esrgan")
class ESRGAN(SRRecipe):
    """Wang et al. 2018: RRDB G, relativistic average D, PSNR pre-train then GAN stage, network interpolation."""

    @classmethod
    def student_values(cls, cfg: TrainConfig, width: float) -> dict:
        """The dense blocks' growth narrows with the width (most of RRDB's multiply-adds are in them)."""
        values = super().student_values(cfg, width)
        return {**values, "sr": {"growth": max(1, round(cfg.sr.growth * width))}}

    def build_generator(self) -> nn.Module:
        n, s = self.cfg.net, self.cfg.sr
        return RRDBNet(3, n.generator_width, s.growth, s.blocks, s.scale, s.residual)
