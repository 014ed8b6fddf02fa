"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data").

Every image D sees, real or generated, goes through the same random pipeline, each transform
applied to a sample with probability ``p``: x-flip, 90-degree rotation, integer translation,
isotropic scaling, arbitrary rotation, anisotropic scaling, fractional translation (one affine
resampling, bilinear with reflection padding), then brightness, contrast, saturation, and cutout.
All of it is differentiable, so G learns through it and is not taught to make augmented images
(the transforms are "non-leaking" for p < ~0.8).

``p`` is steered by the overfitting heuristic r_t = E[sign(D(real))]: every ``interval`` steps it
moves by ``batch * interval / (kimg * 1000)`` towards more augmentation when r_t is above
``target`` (D is confident on reals: it is memorising them) and towards less when below.

Differences from the official pipeline, stated: bilinear instead of wavelet-filtered resampling
for the geometric transforms, and no luma flip, hue rotation, image-space filtering or noise.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .config import ADAConfig

Tensor = torch.Tensor


def _mask(n: int, p: Tensor, gen: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.rand(n, generator=gen, device=device) < p  # [n] bool: apply to this sample


def _normal(n: int, std: float, gen: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.randn(n, generator=gen, device=device) * std


def _uniform(n: int, low: float, high: float, gen: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def _matrix(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """[n] entries -> [n, 3, 3] affine matrices [[a, b, tx], [c, d, ty], [0, 0, 1]]."""
    z, o = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, z, z, o], 1).view(-1, 3, 3)


def _rotation(theta: Tensor) -> Tensor:
    z = torch.zeros_like(theta)
    return _matrix(theta.cos(), -theta.sin(), theta.sin(), theta.cos(), z, z)


def _scale(sx: Tensor, sy: Tensor) -> Tensor:
    z = torch.zeros_like(sx)
    return _matrix(sx, z, z, sy, z, z)


def _shift(tx: Tensor, ty: Tensor) -> Tensor:
    o, z = torch.ones_like(tx), torch.zeros_like(tx)
    return _matrix(o, z, z, o, tx, ty)


def geometry(n: int, size: int, p: Tensor, gen: torch.Generator | None, device: torch.device) -> Tensor:
    """[n, 3, 3] sampling matrices in affine_grid's normalised coordinates (the image spans [-1, 1]).

    Each transform's distribution is symmetric, so a product of random matrices is as likely as its
    inverse and can be used directly as the output -> input map ``affine_grid`` wants.
    """
    one = torch.ones(n, device=device)
    m = torch.eye(3, device=device).expand(n, 3, 3)
    flip = 1 - 2 * (_mask(n, p, gen, device) & _mask(n, torch.tensor(0.5), gen, device)).float()
    m = m @ _scale(flip, one)  # x-flip
    k = torch.randint(4, (n,), generator=gen, device=device).float() * _mask(n, p, gen, device)
    m = m @ _rotation(k * math.pi / 2)  # rotation by a multiple of 90 degrees
    t = torch.round(_uniform(2 * n, -0.125, 0.125, gen, device) * size) * 2 / size  # whole pixels
    t = t.view(2, n) * _mask(n, p, gen, device)
    m = m @ _shift(t[0], t[1])  # integer translation
    s = torch.exp2(_normal(n, 0.2, gen, device) * _mask(n, p, gen, device))
    m = m @ _scale(s, s)  # isotropic scaling
    p_rot = 1 - (1 - p.clamp(0, 1)).sqrt()  # applied twice: about p in total
    m = m @ _rotation(_uniform(n, -math.pi, math.pi, gen, device) * _mask(n, p_rot, gen, device))
    s = torch.exp2(_normal(n, 0.2, gen, device) * _mask(n, p, gen, device))
    m = m @ _scale(s, 1 / s)  # anisotropic scaling
    m = m @ _rotation(_uniform(n, -math.pi, math.pi, gen, device) * _mask(n, p_rot, gen, device))
    t = (_normal(2 * n, 0.125, gen, device) * 2).view(2, n) * _mask(n, p, gen, device)
    return m @ _shift(t[0], t[1])  # fractional translation


def ada_augment(x: Tensor, p: Tensor, gen: torch.Generator | None = None) -> Tensor:
    """Augment a batch ``[N, C, H, W]`` in model space ([-1, 1]) with probability ``p`` per transform."""
    n, c, h, w = x.shape
    dev = x.device
    theta = geometry(n, w, p, gen, dev)[:, :2, :].to(x.dtype)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    col = lambda v: v.view(n, 1, 1, 1).to(x.dtype)  # noqa: E731
    x = x + col(_normal(n, 0.2, gen, dev) * _mask(n, p, gen, dev))  # brightness
    x = x * col(torch.exp2(_normal(n, 0.5, gen, dev) * _mask(n, p, gen, dev)))  # contrast
    sat = torch.exp2(_normal(n, 1.0, gen, dev) * _mask(n, p, gen, dev))
    if c == 3:  # saturation: scale the distance from the grey axis
        mean = x.mean(1, keepdim=True)
        x = mean + (x - mean) * col(sat)
    cy, cx = _uniform(n, 0, 1, gen, dev), _uniform(n, 0, 1, gen, dev)
    on = _mask(n, p, gen, dev)
    iy = (torch.arange(h, device=dev) + 0.5) / h
    ix = (torch.arange(w, device=dev) + 0.5) / w
    inside = ((iy.view(1, h, 1) - cy.view(n, 1, 1)).abs() < 0.25) & ((ix.view(1, 1, w) - cx.view(n, 1, 1)).abs() < 0.25)
    keep = ~(inside & on.view(n, 1, 1))  # cutout: a square of half the side
    return x * keep.unsqueeze(1).to(x.dtype)


class AdaptiveAugment:
    """ADA's p and its controller; ``state_dict`` goes into checkpoints so a resumed run continues exactly."""

    def __init__(self, cfg: ADAConfig, batch_size: int) -> None:
        self.cfg, self.batch_size = cfg, batch_size
        self.p = torch.tensor(float(cfg.p))
        self.rt = torch.tensor(0.0)  # r_t at the last adjustment
        self.sign_sum = torch.tensor(0.0)
        self.count = torch.tensor(0.0)
        self.adjusted_at = -1

    def _to(self, device: torch.device) -> None:
        if self.p.device != device:
            self.p, self.rt = self.p.to(device), self.rt.to(device)
            self.sign_sum, self.count = self.sign_sum.to(device), self.count.to(device)

    def __call__(self, x: Tensor, gen: torch.Generator | None) -> Tensor:
        self._to(x.device)
        return ada_augment(x, self.p, gen)

    def observe(self, real_logits: Tensor, step: int) -> None:
        """Accumulate sign(D(real)) (device-side, no sync); every ``interval`` steps adjust p."""
        self._to(real_logits.device)
        if step % self.cfg.interval == 0 and step != self.adjusted_at and step > 0:
            self.adjusted_at = step
            total = torch.stack([self.sign_sum, self.count])
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(total)  # r_t over every rank's reals
            self.rt = total[0] / total[1].clamp(min=1)
            delta = self.batch_size * self.cfg.interval / (self.cfg.kimg * 1000)
            self.p = (self.p + torch.sign(self.rt - self.cfg.target) * delta * (total[1] > 0)).clamp(0, 1)
            self.sign_sum, self.count = torch.zeros_like(self.sign_sum), torch.zeros_like(self.count)
        self.sign_sum = self.sign_sum + real_logits.detach().float().sign().sum()
        self.count = self.count + real_logits.numel()

    def stats(self) -> dict[str, Tensor]:
        return {"Augment/p": self.p, "Augment/rt": self.rt}

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "rt": self.rt, "sign_sum": self.sign_sum, "count": self.count,
                "adjusted_at": self.adjusted_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.p.device
        self.p, self.rt = state["p"].to(device), state["rt"].to(device)
        self.sign_sum, self.count = state["sign_sum"].to(device), state["count"].to(device)
        self.adjusted_at = int(state["adjusted_at"])
