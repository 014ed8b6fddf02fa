"""Shared image-tensor helpers for the image datasets."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import DataError
from .base import split_indices

SPLIT_TEST_FRACTION = 0.2  # the fixed held-out part of sets without an official split


def check_resolution(resolution: int) -> None:
    if resolution < 4 or resolution > 1024:
        raise DataError(f"resolution {resolution} is out of range; allowed 4..1024")


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """[N, C, h, w] in [0, 1] -> [N, C, R, R] (antialiased when shrinking)."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    shrinking = x.shape[-1] > resolution
    out = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=shrinking)
    return out.clamp(0, 1)


def square(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """[C, H, W] -> [C, R, R]: the centred square crop, resized as every loader resizes."""
    side = min(x.shape[-2:])
    top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
    return resize(x[None, :, top : top + side, left : left + side].contiguous(), resolution)[0]


def set_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Convert [N, C, H, W] between grey (1) and RGB (3)."""
    if channels is None or x.shape[1] == channels:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    raise DataError(f"cannot convert {x.shape[1]} channels to {channels}; allowed channels: 1 or 3")


def take_split(n: int, split: str, labels: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Indices of a fixed train/test split (20 % test, stratified when labelled)."""
    if split not in ("train", "test", "all"):
        raise DataError(f"unknown split {split!r}; allowed: train, test, all")
    if split == "all":
        return torch.arange(n)
    test, train = split_indices(n, SPLIT_TEST_FRACTION, labels, seed)
    return test if split == "test" else train
