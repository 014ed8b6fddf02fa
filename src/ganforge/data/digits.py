"""scikit-learn's 1,797 labelled 8x8 handwritten digits (white on black)."""
from __future__ import annotations

import torch

from .base import DATASETS, DataRequest, Dataset
from .images import check_resolution, resize, set_channels, take_split


def digits_tensor() -> tuple[torch.Tensor, torch.Tensor]:
    """All digits as [1797, 1, 8, 8] float32 in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().div(16.0).unsqueeze(1)
    return x.clamp(0, 1), torch.from_numpy(bunch.target).long()


@DATASETS.register("digits")
def digits(req: DataRequest) -> Dataset:
    """scikit-learn digits, 10 classes, resized from 8x8 (train split 1,437, test 360)."""
    check_resolution(req.resolution)
    x, y = digits_tensor()
    idx = take_split(len(y), req.split, labels=y, seed=0)  # fixed: independent of --seed
    x = set_channels(resize(x[idx], req.resolution), req.channels)
    return Dataset("digits", x, y[idx], "image", [str(i) for i in range(10)])
