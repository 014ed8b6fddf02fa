"""Denoising diffusion (Ho et al. 2020), the likelihood-based alternative GANs are compared with.

Training, one phase per step: draw t ~ U{0, T-1} and eps ~ N(0, I), make
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps and minimise ||eps - eps_theta(x_t, t[, y])||^2
(the "simple" loss, epsilon prediction). abar comes from diffusers' scheduler for the cosine
(Nichol & Dhariwal 2021) or linear beta schedule; t and eps are drawn from the trainer's
generator for the global batch, so resume and DDP follow one process exactly.

Sampling starts from z ~ N(0, I) of the image's shape and runs the configured sampler:
DDIM (Song et al. 2021, deterministic at eta 0) or DDPM's ancestral sampler, with
``diffusion.sample_steps`` steps evenly spaced over the T noise levels ("trailing" spacing, so
the first step is at t = T - 1). The ancestral sampler's per-step noise for image i comes from a
generator seeded by z_i itself, so a seed gives the same images however they are batched.
diffusers' UNet2DModel always has self-attention in its middle block; ``diffusion.attention``
chooses it for the levels.
``set_sampler`` changes the sampler of a loaded model (``ganforge sample --sampler --steps``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import config_section, int_list
from ..errors import ConfigError, GanforgeError
from ..extras import require
from ..models.diffusion import DenoisingUNet
from .base import RECIPES, Phase, Recipe, Stats, StepContext, Tensor

DIFFUSION_CHECKS = {
    "timesteps": (lambda v: v >= 2, "an integer >= 2"),
    "schedule": (lambda v: v in ("cosine", "linear"), "cosine or linear"),
    "channels": (lambda v: int_list(v, lambda c: c >= 8 and c % 8 == 0),
                           "comma-separated channel counts, multiples of 8, e.g. 32,64,64"),
    "attention": (lambda v: int_list(v, lambda a: a in (0, 1)), "comma-separated 0 / 1, one per level"),
    "layers": (lambda v: v >= 1, "an integer >= 1"),
    "sampler": (lambda v: v in ("ddim", "ddpm"), "ddim or ddpm"),
    "sample_steps": (lambda v: v >= 1, "an integer >= 1 (at most diffusion.timesteps)"),
    "eta": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
}


@config_section("diffusion", DIFFUSION_CHECKS)
@dataclass
class DiffusionConfig:
    """The denoising diffusion model (recipes/ddpm.py), on diffusers' UNet2DModel and schedulers."""

    timesteps: int = 1000  # training noise levels T
    schedule: str = "cosine"  # cosine (Nichol & Dhariwal 2021) | linear (Ho et al. 2020)
    channels: str = "32,64,64"  # UNet channels per resolution level (each level after the first halves the side)
    attention: str = "0,0,1"  # self-attention at each level: 1 on, 0 off
    layers: int = 1  # residual layers per level
    sampler: str = "ddim"  # what sample, eval and the training grids use: ddim | ddpm (ancestral)
    sample_steps: int = 50  # denoising steps of that sampler (ddpm with T steps is the original sampler)
    eta: float = 0.0  # DDIM's stochasticity: 0 deterministic, 1 like DDPM
    conditional: bool = True  # condition on labels when the data has classes (--label works)

SAMPLERS = ("ddim", "ddpm")
BETA_SCHEDULES = {"cosine": "squaredcos_cap_v2", "linear": "linear"}


def seeds_of(z: Tensor) -> list[int]:
    """One reproducible seed per image of a batch of starting noise, from its first values' bits."""
    bits = z.detach().flatten(1)[:, :8].float().cpu().contiguous().view(torch.int32).long() & 0xFFFFFFFF
    weights = torch.tensor([1 << (8 * i % 56) for i in range(bits.shape[1])], dtype=torch.long)
    return [int(v) % (2**63 - 1) for v in (bits * weights).sum(1).tolist()]


@RECIPES.register("ddpm")
class DDPM(Recipe):
    """Ho et al. 2020: a diffusers UNet2DModel trained to predict noise; DDPM or DDIM sampling, classes optional."""
    adversarial: ClassVar[bool] = False
    samplers: ClassVar[tuple[str, ...]] = SAMPLERS

    progress: bool = False  # a progress bar over denoising steps (the CLI turns it on)

    def __post_init__(self) -> None:
        d, (c, h, w) = self.cfg.diffusion, (self.data.shape if self.data.kind == "image" else (0, 0, 0))
        if self.data.kind != "image":
            raise ConfigError(f"recipe ddpm needs image data; {self.data.name!r} is 2D points (use --recipe vanilla)")
        widths = [int(v) for v in d.channels.split(",")]
        attention = [bool(int(v)) for v in d.attention.split(",")]
        if len(attention) != len(widths):
            raise ConfigError(f"diffusion.attention={d.attention!r} names {len(attention)} levels but "
                              f"diffusion.channels={d.channels!r} has {len(widths)}; give one 0/1 per level")
        if h != w or h % 2 ** (len(widths) - 1):
            raise ConfigError(f"recipe ddpm with {len(widths)} levels needs square images whose side divides by "
                              f"{2 ** (len(widths) - 1)}; the data is {h}x{w} (fewer diffusion.channels levels?)")
        self.conditional = bool(self.data.num_classes) and d.conditional
        self.nets = {"G": DenoisingUNet(h, c, widths, attention, d.layers,
                                        self.data.num_classes if self.conditional else 0)}
        if d.sample_steps > d.timesteps:
            raise ConfigError(f"diffusion.sample_steps={d.sample_steps} is more than diffusion.timesteps="
                              f"{d.timesteps}; expected 1 to {d.timesteps}")
        self.sampler, self.sample_steps = d.sampler, d.sample_steps
        self._abar: Tensor | None = None

    def schedule(self, sampler: str = "ddpm", steps: int | None = None):
        """A fresh diffusers scheduler (they keep per-run state) for this run's noise levels.

        The linear schedule's betas (1e-4 to 0.02 for T = 1000) are scaled by 1000 / T, so the last
        level is pure noise for any T. DDIM steps back by T // steps, which the "trailing" spacing
        matches only when ``steps`` divides T; otherwise it uses "leading" spacing.
        """
        diffusers = require("diffusers", "the diffusion model's sampler")
        DDIMScheduler, DDPMScheduler = diffusers.DDIMScheduler, diffusers.DDPMScheduler

        d = self.cfg.diffusion
        cls = DDIMScheduler if sampler == "ddim" else DDPMScheduler
        spacing = "leading" if sampler == "ddim" and steps and d.timesteps % steps else "trailing"
        k = 1000 / d.timesteps
        return cls(num_train_timesteps=d.timesteps, beta_schedule=BETA_SCHEDULES[d.schedule],
                   beta_start=min(1e-4 * k, 0.5), beta_end=min(0.02 * k, 0.999), prediction_type="epsilon",
                   clip_sample=True, timestep_spacing=spacing)

    def set_sampler(self, sampler: str | None = None, steps: int | None = None) -> None:
        """Choose the sampler (ddim, ddpm) and its number of denoising steps for later draws."""
        sampler = self.sampler if sampler is None else sampler
        steps = self.sample_steps if steps is None else steps
        if sampler not in SAMPLERS:
            raise GanforgeError(f"sampler {sampler!r} is not allowed; expected one of {', '.join(SAMPLERS)}")
        T = self.cfg.diffusion.timesteps
        if not 1 <= steps <= T:
            raise GanforgeError(f"--steps {steps} is not allowed; expected 1 to {T} (the run's noise levels)")
        self.sampler, self.sample_steps = sampler, steps

    @property
    def sampler_name(self) -> str:
        return f"{self.sampler}-{self.sample_steps}"

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.cfg.optim
        return {"G": torch.optim.Adam(self.nets["G"].parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))}

    def phases(self) -> list[Phase]:
        return [Phase("G", self.denoising_step, updates="G")]

    def alphas_cumprod(self, device: torch.device) -> Tensor:
        if self._abar is None or self._abar.device != device:
            self._abar = self.schedule().alphas_cumprod.to(device=device, dtype=torch.float32)
        return self._abar

    def denoising_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        x0, labels = ctx.real()
        T, n, W = self.cfg.diffusion.timesteps, len(x0), ctx.world_size
        t = ctx.local(ctx.randint(T, n * W))
        eps = ctx.local(ctx.noise((n * W, *x0.shape[1:])))
        abar = self.alphas_cumprod(x0.device)[t].view(-1, 1, 1, 1)
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
        pred = self.nets["G"](x_t, t, labels if self.conditional else None)
        loss = F.mse_loss(pred.float(), eps)
        return loss, {"Loss/denoise": loss.detach()}

    def latent(self, n: int, gen: torch.Generator | None, device: torch.device,
               truncation: float | None = None) -> Tensor:
        if truncation is not None:
            raise ConfigError("truncation is for GAN and VAE latents; a ddpm sample starts from pure noise")
        return torch.randn((n, *self.data.shape), generator=gen, device=device)

    @torch.no_grad()
    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None,
                 truncation: float | None = None) -> Tensor:
        sched = self.schedule(self.sampler, self.sample_steps)
        sched.set_timesteps(self.sample_steps, device=z.device)
        gen = [torch.Generator(z.device).manual_seed(s) for s in seeds_of(z)]  # image i's noise: from z_i alone
        extra = {"eta": self.cfg.diffusion.eta} if self.sampler == "ddim" else {}
        labels = labels if self.conditional else None
        x = z * sched.init_noise_sigma
        steps = sched.timesteps
        if self.progress:
            from rich.progress import track

            steps = track(steps, description=f"{self.sampler_name}, {len(z)} images", transient=True)
        for t in steps:
            eps = G(x, t.expand(len(x)), labels).float()
            x = sched.step(eps, t, x, generator=gen, **extra).prev_sample
        return x.clamp(-1, 1)
