"""Stacked digits: the bundled analogue of Stacked MNIST (Metz et al. 2017; PacGAN, Lin et al. 2018).

Three digits drawn independently from scikit-learn's digits become the R, G and B channels of
one image, so there are 10^3 = 1,000 modes (label ``100*a + 10*b + c``). A generator that drops
modes shows it directly: classify each channel with the digits classifier and count the
distinct triples (benchmarks/stacked_digits.py).
"""
from __future__ import annotations

import torch

from ..errors import DataError
from .base import DATASETS, DataRequest, Dataset
from .digits import digits_tensor
from .images import check_resolution, resize, take_split

STACKED_SAMPLES = 25_600  # fixed, like the 25,600 of PacGAN's Stacked MNIST training set
STACK_SEED = 0  # the triples are the same for every run: --seed does not change the dataset


def stack_triples(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images [n, 3, H, W] whose channels are three independently drawn digits of ``x`` [M, 1, H, W]."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(x), (n, 3), generator=g)  # [n, 3]: one digit per channel
    images = x[idx].squeeze(2)  # [n, 3, H, W]
    labels = (y[idx] * torch.tensor([100, 10, 1])).sum(1)
    return images, labels


@DATASETS.register("stacked-digits")
def stacked_digits(req: DataRequest) -> Dataset:
    """Three random digits as RGB channels, 1,000 classes (100a+10b+c), 25,600 samples from the split's digits."""
    check_resolution(req.resolution)
    if req.channels == 1:
        raise DataError("stacked-digits is RGB by construction (one digit per channel); channels must be 3 or null")
    x, y = digits_tensor()
    idx = take_split(len(y), req.split, labels=y, seed=0)  # the digits split, as for `digits`
    x = resize(x[idx], req.resolution)  # [M, 1, R, R]
    images, labels = stack_triples(x, y[idx], STACKED_SAMPLES, STACK_SEED + (req.split == "test"))
    return Dataset("stacked-digits", images, labels, "image", [f"{i:03d}" for i in range(1000)])
