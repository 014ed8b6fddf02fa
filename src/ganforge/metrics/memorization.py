"""Memorisation check: are generated samples copies of training images?

For each generated sample, the pixel-space L2 distance to its nearest *training* image; for
each real held-out image (never trained on), the same distance. A generator that generalises
makes samples about as far from the training set as unseen real images are (ratio ~1); one
that copies its training images makes them much closer (ratio -> 0).

    mem_ratio  = median_j d(fake_j, train) / median_i d(held_out_i, train)

Copies are judged by a distance that near copies cannot easily escape: both sides brought to at most
32 px (area), blurred with the [1, 2, 1] binomial (noise and re-sampling wash out), each image's mean
removed and scaled to unit norm (brightness and contrast wash out), and compared with every training
image, its mirror image and its shifts by one pixel of that grid:

    mem_copies = share of fakes nearer (so) to a training image than 99 % of the held-out real images are
                 (d_copy(fake_j, train) < the 1st percentile of d_copy(held_out_i, train))

so about 1 % of real images the generator never saw would count as copies (the false-alarm rate is
``mem_copies_heldout``). Calibrated on the digits and faces (benchmarks/memorization.py, RESULTS): it
catches exact copies and copies with light noise, blur, brightness or contrast changes, a one-pixel
shift or a mirror image; heavy noise, re-sampling and larger shifts escape it part of the time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

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


COPY_SIDE = 32  # copies are compared at most this many pixels on a side
COPY_QUANTILE = 0.01  # a sample is a copy when nearer than this share of held-out real images


def _canonical(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> at most COPY_SIDE px (area), blurred with the 3x3 binomial, each image's mean removed and
    scaled to unit norm (brightness and contrast changes wash out), float64."""
    x = x.detach().to("cpu", torch.float64)
    if max(x.shape[-2:]) > COPY_SIDE:
        scale = COPY_SIDE / max(x.shape[-2:])
        x = F.interpolate(x, size=(max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale))),
                          mode="area")
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype)
    k = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    c = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=x.shape[1])
    c = c - c.mean((1, 2, 3), keepdim=True)
    return c / c.flatten(1).norm(dim=1).clamp(min=1e-8).view(-1, 1, 1, 1)


def copy_distance(x: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Per row of ``x``: the distance to its nearest training image, mirror image or one-pixel shift of
    either, both sides canonical (:func:`_canonical`)."""
    t, c = _canonical(train), _canonical(x)
    best = torch.full((len(c),), float("inf"), dtype=torch.float64)
    for v in (t, t.flip(3)):  # one variant of the training set at a time: 18 at once are 18x its memory
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                best = torch.minimum(best, nearest(c, torch.roll(v, (dy, dx), (2, 3)))[0])
    return best


def memorization(fake: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor) -> dict[str, float]:
    """``mem_ratio`` and the two medians (``mem_fake_nn``, ``mem_real_nn``) in pixel space; ``mem_copies``
    (near copies, see the module text), its threshold and its false-alarm rate on the held-out images."""
    d_fake, _ = nearest(fake, train)
    d_real, _ = nearest(held_out, train)
    real_median = float(d_real.median())
    c_real = copy_distance(held_out, train)
    threshold = float(torch.quantile(c_real, COPY_QUANTILE))
    return {"mem_ratio": float(d_fake.median()) / max(real_median, 1e-12),
            "mem_copies": float((copy_distance(fake, train) < threshold).double().mean()),
            "mem_copies_heldout": float((c_real < threshold).double().mean()),
            "mem_fake_nn": float(d_fake.median()), "mem_real_nn": real_median}


def nearest_pairs(fake: torch.Tensor, train: torch.Tensor, n: int = 16) -> torch.Tensor:
    """The ``n`` generated samples nearest to the training set above their nearest training images:
    ``[2 * n, C, H, W]`` (first row fakes, second row their neighbours), for a picture."""
    d, idx = nearest(fake, train)
    order = d.argsort()[:n]
    return torch.cat([fake[order].cpu(), train[idx[order]].cpu()])
