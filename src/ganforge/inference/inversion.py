"""Projection of real images into a trained generator's latent space (GAN inversion by optimisation).

The procedure of StyleGAN2's projector (Karras et al. 2020, section 5 and its ``projector.py``), for any
one-pass image generator of ganforge:

* the latent starts at the mean (w: the mean of the mapping's outputs; z: the best of a few random draws)
  and is optimised with Adam under a perceptual loss (:mod:`ganforge.inference.perceptual`), optionally
  plus a pixel MSE;
* learning rate: linear warm-up over the first 5 % of the steps, cosine ramp-down over the last 25 %;
* Gaussian noise added to the latent, ``0.05 x`` its spread at first and ramped down to zero by 75 % of
  the steps (explores before settling);
* style-based generators also optimise their per-pixel noise maps (``noise=True``), started from the
  generator's fixed ones, under the published regulariser (squared autocorrelation at one pixel shift,
  at every scale of a pyramid, weight 1e5) and renormalised to zero mean and unit variance after every step;
* a class is never given: a conditional generator is started once per class (and a categorical code once
  per value) and each image keeps the start that ends with the lowest loss, so the class is found by the
  optimisation, not read from the image's label.

Spaces: ``w`` (one w for every layer), ``w+`` (one w per layer: fits more, edits less cleanly) and ``z``.
Images are optimised in a batch; every term is a per-image sum and Adam is element-wise, so a batch
gives each image the result it would get alone (same seed).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import DataSpec
from ..errors import GanforgeError
from . import Recipe
from .drawing import latents
from .perceptual import PerceptualDistance, perceptual_for

Tensor = torch.Tensor

SPACES = ("w", "w+", "z")
INITS = ("mean", "encoder")
DEFAULT_STEPS = 200
LR = 0.1  # Adam's peak learning rate (StyleGAN2's projector; in z as well: benchmarks/RESULTS.md)
LATENT_NOISE = 0.05  # initial latent noise, in units of the latent's spread
NOISE_RAMP = 0.75  # ... ramped down to zero by this fraction of the steps
LR_RAMPDOWN = 0.25
LR_RAMPUP = 0.05
NOISE_REG = 1e5
Z_CANDIDATES = 32  # random z drawn per start; the closest one starts the optimisation
W_SAMPLES = 2000  # z mapped to estimate the mean w (per class when conditional) and its spread


@dataclass
class Projection:
    """One projected image. ``latent``: w ``[1, w_dim]`` (space w), ``[num_ws, w_dim]`` (w+) or one z
    (the recipe's latent shape without the batch axis); ``label``: the class (or categorical code) the
    projection settled in, None when the generator has none; ``noise``: a style-based generator's
    optimised noise maps ``[1, 1, r, r]`` per layer (None when it has none or they were not optimised)."""

    space: str
    latent: Tensor
    label: int | None
    noise: list[Tensor] | None
    image: Tensor  # [C, H, W] in [0, 1]
    target: Tensor
    walk: Tensor  # [F, C, H, W]: the images from the start to the result
    psnr: float
    distance: float  # perceptual distance to the target (see ``Projection.protocol``)
    losses: list[float] = field(default_factory=list)

    def info(self) -> dict:
        return {"space": self.space, "label": self.label, "psnr_db": round(self.psnr, 3),
                "perceptual_distance": round(self.distance, 5), "final_loss": round(self.losses[-1], 5)
                if self.losses else None, "noise_maps": self.noise is not None}


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """Per-image PSNR in dB of images in [0, 1]."""
    mse = (a.float() - b.float()).square().flatten(1).mean(1).clamp(min=1e-10)
    return 10 * torch.log10(1 / mse)


def lr_at(t: float, peak: float) -> float:
    """The projector's schedule at fraction ``t`` of the steps: warm-up, flat, cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / LR_RAMPDOWN)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return peak * ramp * min(1.0, t / LR_RAMPUP)


def noise_regularizer(maps: list[Tensor]) -> Tensor:
    """Per image: squared autocorrelation of every noise map at a one-pixel shift (both axes), summed over
    a pyramid down to 8x8 (StyleGAN2's projector)."""
    total = torch.zeros(len(maps[0]), device=maps[0].device)
    for m in maps:
        while True:
            total = total + (m * torch.roll(m, 1, 3)).mean((1, 2, 3)).square() + \
                (m * torch.roll(m, 1, 2)).mean((1, 2, 3)).square()
            if m.shape[-1] <= 8:
                break
            m = F.avg_pool2d(m, 2)
    return total


def check_projectable(recipe: Recipe, spec: DataSpec, space: str) -> None:
    """One-line refusals for runs and spaces that cannot be projected into."""
    name = recipe.cfg.recipe
    if spec.kind != "image":
        raise GanforgeError(f"projection needs an image generator; this {name} run draws 2D points")
    if recipe.texts or recipe.samplers:
        raise GanforgeError(f"projection needs a one-pass generator from a latent; a {name} run "
                            f"{'draws from captions' if recipe.texts else 'samples iteratively'}")
    if space not in SPACES:
        raise GanforgeError(f"--space {space!r}: expected one of {', '.join(SPACES)}")
    if space != "z" and not recipe.has_styles:
        raise GanforgeError(f"--space {space}: a {name} generator has no intermediate latent w; use --space z")


def _starts(recipe: Recipe, spec: DataSpec, space: str) -> list[int | None]:
    """The classes (or categorical codes) a projection in z is started in: every one, or one start without.
    In w the class is part of w (a conditional mapping embeds it): one start, the mean w over all classes."""
    if space != "z":
        return [None]
    if recipe.conditional and spec.num_classes:
        return list(range(spec.num_classes))
    return list(range(recipe.one_hot_code)) or [None]


class _PerImage:
    """One random generator per image, each seeded with the same seed: an image's random draws (z candidates,
    latent noise) do not depend on the other images of the batch, so a batch projects each image as alone."""

    def __init__(self, n: int, starts: int, seed: int, device: torch.device) -> None:
        self.starts = starts
        self.gens = [torch.Generator(device).manual_seed(seed) for _ in range(n)]

    def draw(self, fn: Callable[[int, torch.Generator], Tensor]) -> Tensor:
        """``fn(starts, gen)`` for every image's generator, concatenated: ``[n * starts, ...]``."""
        return torch.cat([fn(self.starts, gen) for gen in self.gens])

    def randn(self, shape: torch.Size) -> Tensor:
        """Standard normal ``[n * starts, *shape]``."""
        return self.draw(lambda k, gen: torch.randn(k, *shape, generator=gen, device=gen.device))


class _Latents:
    """The optimised variables of one space and how they become images (model space)."""

    def __init__(self, recipe: Recipe, G: nn.Module, spec: DataSpec, space: str, n: int, starts: list[int | None],
                 noise: bool, seed: int, device: torch.device) -> None:
        self.recipe, self.G, self.space = recipe, G, space
        s = len(starts)
        self.labels = None if starts[0] is None else torch.tensor(starts, device=device).repeat(n)  # [n * s]
        self.style = recipe.has_styles
        self.code = 0 if recipe.conditional else recipe.one_hot_code
        b = n * s
        if space == "z":
            self.scale = 1.0
            self.value = torch.zeros(0)  # set by pick_z
        else:
            with torch.no_grad():
                z, labels = latents(recipe, spec, W_SAMPLES, seed, None, None, device)
                ws = G.w(z, labels if recipe.conditional else None)  # [M, w_dim], classes uniform
                mean = ws.mean(0, keepdim=True)
                self.scale = float((ws - mean).square().sum(-1).mean().sqrt())
            layers = G.num_ws if space == "w+" else 1
            self.value = mean.repeat(n, 1).unsqueeze(1).repeat(1, layers, 1).clone()  # [b, layers, w_dim]
        self.noise = None
        if self.style and noise:
            self.noise = [layer.noise_const.expand(b, -1, -1, -1).clone() for layer in G.synthesis.layers]

    def pick_z(self, targets: Tensor, loss_of: Callable[[Tensor, Tensor], Tensor], gens: _PerImage) -> None:
        """z starts: for every image and start, the closest of ``Z_CANDIDATES`` random draws."""
        best, best_loss = None, None
        with torch.no_grad():
            for _ in range(Z_CANDIDATES):
                z = gens.draw(lambda n, gen: self.recipe.latent(n, gen, gen.device))
                z = z[:, self.code:] if self.code else z
                loss = loss_of(self.images(z), targets)
                if best is None:
                    best, best_loss = z.clone(), loss
                else:
                    better = loss < best_loss
                    best[better], best_loss = z[better], torch.minimum(loss, best_loss)
        self.value = best

    def start_at(self, guess: Tensor) -> None:
        """Start from an encoder's guesses ``[n * starts, dim]`` (w, or z's continuous part, flattened)."""
        if self.space == "z":
            shape = self.recipe.latent(1, None, guess.device).shape[1:]
            self.value = guess.view(len(guess), shape[0] - self.code, *shape[1:]).clone()
        else:
            self.value = guess[:, None].repeat(1, self.value.shape[1], 1).clone()

    def variables(self) -> list[Tensor]:
        return [self.value] + (self.noise or [])

    def images(self, value: Tensor, rows: Tensor | None = None) -> Tensor:
        """Model-space images of latents ``value`` (laid out like ``self.value``, or its ``rows``)."""
        labels = self.labels if rows is None or self.labels is None else self.labels[rows]
        noise = self.noise if rows is None or self.noise is None else [m[rows] for m in self.noise]
        return render(self.recipe, self.G, self.space, value, labels, noise)


def render(recipe: Recipe, G: nn.Module, space: str, latents: Tensor, labels: Tensor | None = None,
           noise: list[Tensor] | None = None) -> Tensor:
    """Model-space images of latents of ``space``: w ``[B, 1 | num_ws, w_dim]`` or z (without a categorical
    code's entries where the recipe has one: ``labels`` give it, as they give a conditional generator's
    class); ``noise``: a style-based generator's noise maps ``[B, 1, r, r]`` per layer (None: its fixed ones)."""
    code = 0 if recipe.conditional else recipe.one_hot_code
    if space == "z":
        if code:
            onehot = F.one_hot(labels, code).to(latents.dtype).view(-1, code, *latents.shape[2:])
            latents = torch.cat([onehot, latents], 1)
        cond = labels if recipe.conditional else None
        if not recipe.has_styles:
            return recipe.generate(G, latents, labels=cond)
        ws = G.broadcast(G.w(latents, cond))
    else:
        ws = latents.expand(-1, G.num_ws, -1) if latents.shape[1] == 1 else latents
    return recipe.styles(G, ws, noise)


def project(recipe: Recipe, G: nn.Module, spec: DataSpec, targets: Tensor, space: str | None = None,
            steps: int = DEFAULT_STEPS, pixel: float = 0.0, noise: bool = True, seed: int = 0, frames: int = 16,
            distance: PerceptualDistance | None = None, progress: Callable[[int, int], None] | None = None,
            init: str = "mean", run_dir: Path | None = None) -> list[Projection]:
    """Project ``targets`` (images ``[N, C, H, W]`` in [0, 1] at the generator's size and channels) into
    ``space`` (default w for style-based generators, z otherwise) in ``steps`` steps; see the module text.
    ``pixel`` weights a pixel MSE added to the perceptual loss; ``noise`` optimises a style-based
    generator's noise maps; ``frames`` images make each result's walk; ``progress(step, steps)`` is called
    after every step. ``init``: ``mean`` (the mean w, or the best of random z) or ``encoder`` (the guess of
    an encoder trained on the generator's samples, :mod:`ganforge.inference.encoder`, kept in ``run_dir``)."""
    space = space or ("w" if recipe.has_styles else "z")
    check_projectable(recipe, spec, space)
    if steps < 1:
        raise GanforgeError(f"--steps {steps} is not allowed; expected an integer >= 1")
    if init not in INITS:
        raise GanforgeError(f"--init {init!r}: expected one of {', '.join(INITS)}")
    if tuple(targets.shape[1:]) != tuple(spec.shape):
        raise GanforgeError(f"images of shape {tuple(targets.shape[1:])} cannot be projected into a generator of "
                            f"{tuple(spec.shape)} images")
    device = next(G.parameters()).device
    trainable = [q for q in G.parameters() if q.requires_grad]
    G.eval().requires_grad_(False)  # gradients for the latents only
    try:
        guess = None
        if init == "encoder":
            from .encoder import encoder_for

            enc = encoder_for(recipe, G, spec, "z" if space == "z" else "w", run_dir)
            with torch.no_grad():
                guess = enc(targets.to(device).float())
        return _optimise(recipe, G, spec, targets, space, steps, pixel, noise, seed, frames,
                         (distance or perceptual_for(spec)).to(device), progress, device, guess)
    finally:
        for q in trainable:
            q.requires_grad_(True)


def _optimise(recipe: Recipe, G: nn.Module, spec: DataSpec, targets: Tensor, space: str, steps: int, pixel: float,
              noise: bool, seed: int, frames: int, dist: PerceptualDistance, progress, device,
              guess: Tensor | None) -> list[Projection]:
    starts = _starts(recipe, spec, space)
    n, s = len(targets), len(starts)
    target = targets.to(device).float().repeat_interleave(s, 0)  # [n * s, C, H, W], image-major

    to_target = dist.towards(target)

    def loss_of(model_images: Tensor, tgt: Tensor) -> Tensor:
        x = (model_images.float() + 1) / 2  # no clamp: it would cut the gradient outside [0, 1]
        per = to_target(x)
        return per + pixel * (x - tgt).square().flatten(1).mean(1) if pixel else per

    lat = _Latents(recipe, G, spec, space, n, starts, noise, seed, device)
    gens = _PerImage(n, s, seed, device)
    if guess is not None:
        lat.start_at(guess.repeat_interleave(s, 0))
    elif space == "z":
        lat.pick_z(target, loss_of, gens)
    lat.value.requires_grad_(True)
    for m in lat.noise or []:
        m.requires_grad_(True)
    opt = torch.optim.Adam(lat.variables(), lr=LR, betas=(0.9, 0.999))
    marks = {round(i * (steps - 1) / max(frames - 1, 1)) for i in range(frames)} if frames > 1 else {steps - 1}
    snapshots, history = [lat.value.detach().clone()], []
    for step in range(steps):
        t = step / steps
        for group in opt.param_groups:
            group["lr"] = lr_at(t, LR)
        spread = lat.scale * LATENT_NOISE * max(0.0, 1 - t / NOISE_RAMP) ** 2
        noisy = lat.value + gens.randn(lat.value.shape[1:]) * spread
        per = loss_of(lat.images(noisy), target)
        total = per.sum()
        if lat.noise is not None:
            total = total + NOISE_REG * noise_regularizer(lat.noise).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if lat.noise is not None:
            with torch.no_grad():
                for m in lat.noise:
                    m -= m.mean((1, 2, 3), keepdim=True)
                    m *= m.square().mean((1, 2, 3), keepdim=True).rsqrt()
        history.append(per.detach())
        if step in marks and step:
            snapshots.append(lat.value.detach().clone())
        if progress is not None:
            progress(step + 1, steps)
    if not torch.equal(snapshots[-1], lat.value.detach()):
        snapshots.append(lat.value.detach().clone())
    return _results(lat, spec, targets, target, loss_of, dist, snapshots, history, starts)


@torch.no_grad()
def _results(lat: _Latents, spec: DataSpec, targets: Tensor, target: Tensor, loss_of, dist: PerceptualDistance,
             snapshots: list[Tensor], history: list[Tensor], starts: list[int | None]) -> list[Projection]:
    """Each image's best start: its latent, image, walk, distances and loss curve."""
    n, s = len(targets), len(starts)
    best = loss_of(lat.images(lat.value), target).view(n, s).argmin(1)  # [n]
    pick = torch.arange(n, device=best.device) * s + best
    walk = torch.stack([spec.from_model(lat.images(snap[pick], pick).float()).cpu() for snap in snapshots], 1)
    images = walk[:, -1]
    d = dist(images.to(target.device), targets.to(target.device).float()).cpu()
    p = psnr(images, targets.cpu())
    hist = torch.stack(history).view(len(history), n, s).cpu()
    out = []
    for i in range(n):
        j, k = int(pick[i]), int(best[i])
        noise = None if lat.noise is None else [m[j : j + 1].detach().cpu().clone() for m in lat.noise]
        out.append(Projection(lat.space, lat.value[j].detach().cpu().clone(), starts[k], noise, images[i],
                              targets[i].cpu(), walk[i], float(p[i]), float(d[i]), hist[:, i, k].tolist()))
    return out
