"""2D Gaussian mixtures of the VEEGAN / PacGAN mode-collapse benchmarks."""
from __future__ import annotations

import math

import torch

from ..errors import DataError
from .base import DATASETS, DataRequest, Dataset

TOY_SAMPLES = 100_000  # a fixed sample, so a "dataset" here is as finite as an image set


def ring_means(k: int, radius: float) -> torch.Tensor:
    """``k`` means at angles 2*pi*i/k (not linspace(0, 2pi, k), which repeats a mode)."""
    angles = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    return (radius * torch.stack([angles.cos(), angles.sin()], 1)).float()


def grid_means(k: int, spacing: float) -> torch.Tensor:
    side = math.isqrt(k)
    if side * side != k:
        raise DataError(f"grid needs a square number of modes, got {k}; e.g. 9, 16, 25")
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], 1)


def mixture(name: str, means: torch.Tensor, std: float, seed: int) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(means), (TOY_SAMPLES,), generator=g)
    x = means[idx] + std * torch.randn(TOY_SAMPLES, 2, generator=g)
    return Dataset(name, x, None, "points", info={"means": means, "std": std})


def _parse(arg: str, usage: str) -> tuple[int, float, float]:
    parts = arg.split(":")
    try:
        k, a, s = int(parts[0]), float(parts[1]), float(parts[2])
        if len(parts) != 3 or k < 1 or a <= 0 or s <= 0:
            raise ValueError
    except (ValueError, IndexError):
        raise DataError(f"bad mixture spec {arg!r}; expected {usage} with K >= 1 and positive numbers") from None
    return k, a, s


@DATASETS.register("ring8")
def ring8(req: DataRequest) -> Dataset:
    """8 Gaussians on a circle of radius 1, std 0.01 (VEEGAN)."""
    return mixture("ring8", ring_means(8, 1.0), 0.01, req.seed)


@DATASETS.register("grid25")
def grid25(req: DataRequest) -> Dataset:
    """25 Gaussians at {-4,-2,0,2,4}^2, std 0.05 (VEEGAN)."""
    return mixture("grid25", grid_means(25, 2.0), 0.05, req.seed)


@DATASETS.register("ring")
def ring(req: DataRequest, arg: str = "") -> Dataset:
    """ring:K:RADIUS:STD, K Gaussians on a circle."""
    k, radius, std = _parse(arg, "ring:K:RADIUS:STD")
    return mixture(f"ring:{arg}", ring_means(k, radius), std, req.seed)


@DATASETS.register("grid")
def grid(req: DataRequest, arg: str = "") -> Dataset:
    """grid:K:SPACING:STD, K (square) Gaussians on a grid centred at 0."""
    k, spacing, std = _parse(arg, "grid:K:SPACING:STD")
    return mixture(f"grid:{arg}", grid_means(k, spacing), std, req.seed)
