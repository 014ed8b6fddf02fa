"""Video: a GAN that draws short clips, keeping their content and moving it (``--recipe video``).

The generator (models/video.py) splits a clip's latent into content and time-continuous motion; two
discriminators judge it: one looks at single frames (are they sharp digits?), one at the whole clip with
3D convolutions (does the content stay, does it move the way real clips move?). Each step:

* ``D``: both judges on real clips against ``G(z).detach()``, each with the adversarial loss
  (``video.frame_weight``, ``video.clip_weight``) and R1 on real clips (``reg.r1``);
* ``G``: the generator against both judges, on the same fake batch.

Clips are ``[N, T, C, H, W]``. A clip can be drawn for any number of frames (``frames=`` in sampling):
the motion features are functions of continuous time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from ..config import config_section
from ..data import DataSpec
from ..data.run_data import RunData
from ..errors import ConfigError, GanforgeError
from ..inference.clips import ClipSampler
from ..losses import r1_penalty
from ..models.video import VideoDiscriminator, VideoGenerator
from ..version import __version__
from .base import (
    RECIPES,
    Phase,
    Picture,
    PictureInputs,
    Shards,
    Stats,
    StepContext,
    Tensor,
    truncated_normal,
)
from .gan import GANRecipe

GENERATORS = ("layered", "frames")
VIDEO_CHECKS = {
    "generator": (lambda v: v in GENERATORS, "layered or frames"),
    "motion_dim": (lambda v: v >= 1, "an integer >= 1"),
    "motion_channels": (lambda v: v >= 1, "an integer >= 1"),
    "frames_judged": (lambda v: v >= 1, "an integer >= 1"),
    "frame_weight": (lambda v: v >= 0, "a number >= 0"),
    "clip_weight": (lambda v: v > 0, "a number > 0"),
    "motion_lr": (lambda v: v > 0, "a number > 0"),
    "transform": (lambda v: v in ("shift", "affine"), "shift or affine"),
    "sprite": (lambda v: 0 < v <= 1, "a share of the frame's side in (0, 1]"),
    "path": (lambda v: v in ("waves", "bounce"), "waves or bounce"),
}
MEASURES = {  # what the report calls the video measures (metrics/video.py)
    "frame_fd": "per-frame fd (digit crops; other clips: whole frames; lower is better)",
    "frame_precision": "per-frame precision",
    "frame_recall": "per-frame recall", "frame_coverage": "per-frame coverage",
    "confident": "frames confidently a digit (digits classifier)", "identity_kept": "clips keeping their digit",
    "speed": "speed (px / frame)", "speed_cv": "speed variation between bounces (real clips: ~0.27, whole pixels)",
    "bounce_ok": "direction reversals at a wall", "still": "clips that do not move",
    "clip_fd": "clip Fréchet distance (spatio-temporal features; lower is better)"}
GRID_CLIPS = 10  # clips a training picture shows, one row each


@config_section("video", VIDEO_CHECKS)
@dataclass
class VideoConfig:
    """Video GAN (recipes/video.py): the generator's design, its motion code, and the two judges."""

    generator: str = "layered"  # layered: one foreground placed per frame (LR-GAN); frames: every frame drawn (MoCoGAN)
    motion_dim: int = 8  # the motion latent z_m beside the content latent (net.z_dim)
    motion_channels: int = 8  # waves of time the frames see (path waves; bounce uses one per axis)
    frames_judged: int = 4  # frames per clip the frame discriminator judges (evenly spaced)
    frame_weight: float = 1.0  # weight of the frame discriminator's game
    clip_weight: float = 1.0  # weight of the clip discriminator's game
    conditional: bool = False  # on labelled clips (moving-digits), draw a chosen class (cGAN); false: ignore labels
    transform: str = "affine"  # layered: how a frame places the foreground (affine: shift, scale, rotation; shift)
    motion_lr: float = 5.0  # the motion networks' learning rate, in multiples of optim.lr_g
    sprite: float = 1.0  # layered: the foreground's side as a share of the frame's (1: a whole layer over a drawn
    #                      background; 0.5: a sprite half the frame's side over a flat one, cheaper and sharper)
    whole_pixels: bool = False  # layered: paste the foreground at whole pixels, as real sprites are pasted, so no
    #                             sub-pixel shift blurs it (the shift learns from the bilinear picture; models/video.py)
    path: str = "waves"  # layered: waves (a network reads each frame's placement from all the motion waves) or
    #                      bounce (shifts alone: on each axis one triangle wave, a constant speed between two walls)


@RECIPES.register("video")
class VideoGAN(GANRecipe):
    """Clips from content and motion codes, judged frame by frame and as a whole."""

    pipeline = ClipSampler
    default_data: ClassVar[str | None] = "moving-digits"
    default_for: ClassVar[tuple[str, ...]] = ("moving-digits", "video")
    why_default: ClassVar[str] = "the video GAN (clips)"
    own_metrics: ClassVar[str | None] = ("per-frame fd/precision/recall/coverage, content kept, motion and a clip "
                                         "Fréchet distance (metrics/video.py)")

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.conditional = bool(self.data.num_classes) and cfg.video.conditional
        if self.data.kind != "video":
            raise ConfigError(f"recipe video needs clips (moving-digits, video:DIR); {self.data.name!r} is "
                              f"{self.data.kind} data")
        if cfg.augment:
            raise ConfigError(f"augment={cfg.augment!r} is not offered by recipe video; set augment to ''")
        reg = cfg.reg
        if reg.n_critic != 1 or reg.gp or reg.r2 or reg.pack > 1 or reg.unroll or reg.info or \
                cfg.net.z_discrete or reg.spectral_norm:
            raise ConfigError("recipe video takes reg.r1, reg.lazy_every and reg.mbstd among the regularizers; "
                              "n_critic, gp, r2, pack, unroll, info, spectral_norm and net.z_discrete are for the "
                              "image recipes")
        if cfg.video.path == "bounce" and (cfg.video.generator != "layered" or cfg.video.transform != "shift"):
            raise ConfigError("video.path=bounce moves a layered foreground by shifts alone; set video.generator "
                              "layered and video.transform shift, or video.path waves")
        side = self.sprite_side
        if side < self.data.shape[-1] and (side < 4 or side & (side - 1)):
            raise ConfigError(f"video.sprite={cfg.video.sprite} makes a {side} px sprite on {self.data.shape[-1]} px "
                              "frames; allowed: a share that gives a power of two >= 4 px (0.5, 0.25, ...) or 1")
        super().__post_init__()
        if self.loss.g_uses_real:
            raise ConfigError(f"loss={cfg.loss} (relativistic) is not offered by recipe video; use non_saturating, "
                              "hinge, lsgan or wgan")
        self.frames = self.data.shape[0]  # clips are drawn this long unless asked otherwise

    @property
    def sprite_side(self) -> int:
        """The foreground's side in pixels (the frame's own for a whole layer)."""
        return round(self.cfg.video.sprite * self.data.shape[-1])

    def build_nets(self) -> dict[str, nn.Module]:
        t, c, h, _ = self.data.shape
        n, v = self.cfg.net, self.cfg.video
        k = self.data.num_classes if self.conditional else 0
        G = VideoGenerator(n.z_dim, v.motion_dim, t, h, c, n.generator_width, n.max_channels,
                           v.generator == "layered", v.motion_channels, n.upsample, v.transform == "affine", k,
                           self.sprite_side, v.whole_pixels, v.path == "bounce")
        return {"G": G, "D": VideoDiscriminator(t, h, c, n.width, n.max_channels, v.frames_judged, self.cfg.reg.mbstd,
                                                k)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam for both players; G's motion networks learn ``video.motion_lr`` times faster (a clip's path is a
        few numbers that must travel far: at the base rate, Adam moves them a pixel per few hundred steps)."""
        super().build_optimizers()
        o, G = self.cfg.optim, self.nets["G"]
        motion = {id(p) for p in G.motion_parameters()}
        self.optimizers["G"] = torch.optim.Adam(
            [{"params": [p for p in G.parameters() if id(p) not in motion], "lr": o.lr_g},
             {"params": G.motion_parameters(), "lr": o.lr_g * self.cfg.video.motion_lr}],
            betas=(o.beta1, o.beta2), foreach=True)
        return self.optimizers

    @classmethod
    def intended_use(cls, cfg) -> str:
        return ("drawing short clips like the training clips (content that stays, motion like the data's): "
                "research and teaching on video generation")

    # ------------------------------------------------------------------ latents
    @property
    def latent_dim(self) -> int:
        return self.cfg.net.z_dim + self.cfg.video.motion_dim

    @property
    def content_dim(self) -> int:
        """Leading latent entries that are the content code (the rest is motion)."""
        return self.cfg.net.z_dim

    def _latent(self, n: int, gen: torch.Generator | None, device: torch.device,
                truncation: float | None = None) -> Tensor:
        return truncated_normal((n, self.latent_dim), truncation, gen, device)

    def walk(self, z: Tensor, t: Tensor) -> Tensor:
        """A walk between contents; every clip of it moves as the first seed's does."""
        path = super().walk(z, t)
        path[:, self.content_dim :] = z[0, self.content_dim :]
        return path

    def set_frames(self, frames: int | None) -> None:
        """Draw clips ``frames`` long from now on (None: as trained)."""
        if frames is not None and not 1 <= frames <= 1024:
            raise GanforgeError(f"frames={frames} is not allowed; expected an integer in 1..1024")
        self.frames = frames or self.data.shape[0]

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None,
                 truncation: float | None = None) -> Tensor:
        t = None if self.frames == self.data.shape[0] else torch.arange(self.frames, device=z.device)
        return G(z, labels if self.conditional else None, t)

    # ------------------------------------------------------------------ phases
    def phases(self) -> list[Phase]:
        phases = [Phase("D", self.d_step, updates="D", grads=("D", "G"))]
        if self.cfg.reg.r1 and self.cfg.reg.lazy_every > 1:
            phases.append(Phase("Dreg", self.d_reg_step, updates="D", every=self.cfg.reg.lazy_every))
        return phases + [Phase("G", self.g_step, updates="G")]

    def r1(self, real: Tensor, labels: Tensor | None, scale: int, stats: Stats) -> Tensor:
        """R1 of both judges on real clips (the frame judge's per frame), times ``reg.r1 / 2 * scale``."""
        D = self.nets["D"]
        per = D.frames.per_clip
        r1 = r1_penalty(D.clips, real) + r1_penalty(lambda x: D.frames(x, labels).sum(1) / per, real)
        stats["Loss/D/r1"] = r1.detach()
        return self.cfg.reg.r1 / 2 * scale * r1

    def d_reg_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        """Lazy R1 (every ``reg.lazy_every`` steps, gamma scaled by the interval)."""
        real, labels = (ctx.cache["real"], ctx.cache["labels"]) if "real" in ctx.cache else ctx.real()
        stats: Stats = {}
        labels = labels if self.conditional else None
        return self.r1(real, labels, self.cfg.reg.lazy_every, stats), stats

    def d_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        v, D = self.cfg.video, self.nets["D"]
        real, labels = ctx.real()
        labels = labels if self.conditional else None  # fakes follow the data's class mix
        fake = self.train_fake(ctx, self.train_latent(ctx, len(real)), labels)
        ctx.cache.update(fake=fake, real=real, labels=labels)
        (rf, rc), (ff, fc) = D(real, labels), D(fake.detach(), labels)
        frame_loss, clip_loss = self.loss.d(rf, ff), self.loss.d(rc, fc)
        loss = v.frame_weight * frame_loss + v.clip_weight * clip_loss
        b = self.loss.boundary
        stats = {"Loss/D": loss.detach(), "Loss/D/frames": frame_loss.detach(), "Loss/D/clips": clip_loss.detach(),
                 "D/real": rc.detach().mean(), "D/fake": fc.detach().mean(),
                 "D/accuracy": 0.5 * ((rc > b).float().mean() + (fc < b).float().mean()).detach(),
                 "D/frame_accuracy": 0.5 * ((rf > b).float().mean() + (ff < b).float().mean()).detach()}
        if self.cfg.reg.r1 and self.cfg.reg.lazy_every == 1:
            loss = loss + self.r1(real, labels, 1, stats)
        return loss, stats

    def g_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        v = self.cfg.video
        fake, labels = ctx.cache.pop("fake", None), ctx.cache.get("labels")
        if fake is None:
            real, labels = ctx.real()
            labels = labels if self.conditional else None
            fake = self.train_fake(ctx, self.train_latent(ctx, len(real)), labels)
        ff, fc = self.nets["D"](fake, labels)
        frame_loss, clip_loss = self.loss.g(ff), self.loss.g(fc)
        loss = v.frame_weight * frame_loss + v.clip_weight * clip_loss
        return loss, {"Loss/G": loss.detach(), "Loss/G/frames": frame_loss.detach(), "Loss/G/clips": clip_loss.detach()}

    # ------------------------------------------------------------------ pictures and measures
    def grid_labels(self, pics: PictureInputs) -> Tensor | None:
        """A clip of each of the first classes (conditional runs), one a row."""
        k = min(pics.data.num_classes, GRID_CLIPS) if self.conditional else 0
        return torch.arange(k, device=pics.device) if k else None

    def pictures(self, G: nn.Module, pics: PictureInputs) -> list[Picture]:
        """Film strips: one fixed clip a row, its frames left to right."""
        clips = self.preview(G, pics, GRID_CLIPS)
        return [Picture(clips.flatten(0, 1), clips.shape[1])]

    def measure(self, G: nn.Module, data: RunData, names: list[str], n: int, seed: int, *,
                draw_seed: int | None = None, features: str | None = None, inception_weights: str | None = None,
                shards: Shards | None = None) -> dict | None:
        """Per-frame quality, content kept, motion like the data's and a clip Fréchet distance
        (:mod:`ganforge.metrics.video`), against the training clips."""
        from ..inference.drawing import draw
        from ..metrics.video import video_metrics

        if shards is not None and not shards.is_main:
            return None
        fake, _ = draw(self, G, self.data, n, seed if draw_seed is None else draw_seed)
        reference = data.reference()
        out: dict = video_metrics(fake, reference, n=n, seed=seed)
        out["protocol"] = {"n_fake": len(fake), "n_real": min(n, len(reference)), "seed": seed,
                           "reference": f"{reference.name} (train split)", "extractor": "metrics/video.py",
                           "ganforge_version": __version__, "labels": MEASURES}
        return out

    @classmethod
    def fine_tune_values(cls, cfg, spec: DataSpec) -> dict:
        return {**super().fine_tune_values(cfg, spec), "channels": spec.shape[1]}
