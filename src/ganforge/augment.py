"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for data-efficient GANs.

The same random transform family is applied to real and generated images before the
discriminator sees them, and gradients flow through it to the generator, so D cannot
memorise a small training set while G is not taught to reproduce the augmentations.
Policies: ``translation`` (shift by up to 1/8 of the side, zero padding), ``cutout``
(a zeroed square of half the side), ``color`` (brightness, saturation, contrast).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import ConfigError

Tensor = torch.Tensor


def _rand(n: int, gen: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.rand(n, 1, 1, 1, generator=gen, device=device)


def color(x: Tensor, gen: torch.Generator | None) -> Tensor:
    n, dev = len(x), x.device
    x = x + (_rand(n, gen, dev) - 0.5)  # brightness
    if x.shape[1] > 1:
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (_rand(n, gen, dev) * 2) + mean  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(n, gen, dev) + 0.5) + mean  # contrast


def translation(x: Tensor, gen: torch.Generator | None, ratio: float = 0.125) -> Tensor:
    """Shift each image by an integer offset in [-ratio*side, ratio*side], zero padded."""
    n, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=gen, device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=gen, device=x.device)
    iy = torch.arange(h, device=x.device).view(1, h, 1)
    ix = torch.arange(w, device=x.device).view(1, 1, w)
    gy = (iy + dy + 1).clamp(0, h + 1)  # [N, H, 1] index into the padded image
    gx = (ix + dx + 1).clamp(0, w + 1)  # [N, 1, W]
    padded = F.pad(x, (1, 1, 1, 1))  # [N, C, H+2, W+2]
    flat = (gy * (w + 2) + gx).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, flat).view_as(x)


def cutout(x: Tensor, gen: torch.Generator | None, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=gen, device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=gen, device=x.device)
    iy = torch.arange(h, device=x.device).view(1, h, 1)
    ix = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = cy - ch // 2, cx - cw // 2
    inside = (iy >= top) & (iy < top + ch) & (ix >= left) & (ix < left + cw)  # [N, H, W]
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


ADAPTIVE = "ada"  # adaptive discriminator augmentation (ada.py), a policy of its own


def parse_policy(policy: str) -> list[str]:
    """DiffAugment policy names, ``["ada"]``, or ``[]``; anything else is a ConfigError."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    if ADAPTIVE in names and len(names) > 1:
        raise ConfigError(f"augment={policy!r}: ada is a whole pipeline of its own; use augment=ada alone "
                          "or DiffAugment policies without it")
    bad = [p for p in names if p not in POLICIES and p != ADAPTIVE]
    if bad:
        raise ConfigError(f"augment={policy!r}: unknown policy {bad[0]!r}; allowed: {', '.join(POLICIES)} "
                          "(comma-separated), ada, or empty")
    return names


def diff_augment(x: Tensor, policy: list[str], gen: torch.Generator | None = None) -> Tensor:
    """Apply the policies in order to a batch [N, C, H, W]; identity for an empty policy."""
    for name in policy:
        x = POLICIES[name](x, gen)
    return x
