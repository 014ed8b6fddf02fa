"""Memorisation check: are generated samples copies of training images?

For each generated sample, the pixel-space L2 distance to its nearest *training* image; for
each real held-out image (never trained on), the same distance. A generator that generalises
makes samples about as far from the training set as unseen real images are (ratio ~1); one
that copies its training images makes them much closer (ratio -> 0).

    mem_ratio  = median_j d(fake_j, train) / median_i d(held_out_i, train)
    mem_copies = share of fakes nearer to a training image than every held-out image is
                 (d(fake_j, train) < min_i d(held_out_i, train))
"""
from __future__ import annotations

import torch

CHUNK = 1024


def nearest(x: torch.Tensor, train: torch.Tensor, chunk: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``x`` ([N, ...]) the L2 distance to its nearest row of ``train`` ([M, ...]) and its index."""
    a = x.detach().to("cpu", torch.float64).flatten(1)
    b = train.detach().to("cpu", torch.float64).flatten(1)
    dist, idx = torch.empty(len(a), dtype=torch.float64), torch.empty(len(a), dtype=torch.long)
    for s in range(0, len(a), chunk):
        d = torch.cdist(a[s : s + chunk], b)
        dist[s : s + chunk], idx[s : s + chunk] = d.min(1)
    return dist, idx


def memorization(fake: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor) -> dict[str, float]:
    """``mem_ratio``, ``mem_copies`` and the two medians (``mem_fake_nn``, ``mem_real_nn``), in pixel space."""
    d_fake, _ = nearest(fake, train)
    d_real, _ = nearest(held_out, train)
    real_median = float(d_real.median())
    return {"mem_ratio": float(d_fake.median()) / max(real_median, 1e-12),
            "mem_copies": float((d_fake < d_real.min()).double().mean()),
            "mem_fake_nn": float(d_fake.median()), "mem_real_nn": real_median}


def nearest_pairs(fake: torch.Tensor, train: torch.Tensor, n: int = 16) -> torch.Tensor:
    """The ``n`` generated samples nearest to the training set above their nearest training images:
    ``[2 * n, C, H, W]`` (first row fakes, second row their neighbours), for a picture."""
    d, idx = nearest(fake, train)
    order = d.argsort()[:n]
    return torch.cat([fake[order].cpu(), train[idx[order]].cpu()])
