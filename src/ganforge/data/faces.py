"""scikit-image's LFW subset: 100 grey 25x25 faces, bundled offline with scikit-image."""
from __future__ import annotations

import numpy as np
import torch

from .base import DATASETS, DataRequest, Dataset
from .images import check_resolution, resize, set_channels, take_split

LFW_FACES = 100  # lfw_subset() holds 100 faces followed by 100 non-face background crops


def faces_tensor() -> torch.Tensor:
    """The 100 faces as [100, 1, 25, 25] float32 in [0, 1]."""
    from skimage.data import lfw_subset

    images = np.asarray(lfw_subset())[:LFW_FACES]  # [100, 25, 25]
    # Documented as uint8, shipped as float64 in [0, 1] by recent versions: accept both.
    scale = 255.0 if np.issubdtype(images.dtype, np.integer) else 1.0
    x = torch.from_numpy(images.astype(np.float32) / scale).unsqueeze(1)  # [100, 1, 25, 25]
    return x.clamp(0, 1)


@DATASETS.register("faces100")
def faces100(req: DataRequest) -> Dataset:
    """100 grey LFW faces (scikit-image), unlabelled (train split 80, test 20)."""
    check_resolution(req.resolution)
    x = faces_tensor()
    idx = take_split(len(x), req.split, seed=0)  # fixed: independent of --seed
    x = set_channels(resize(x[idx], req.resolution), req.channels)  # [N, C, R, R]
    return Dataset("faces100", x, None, "image")
