"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020).

Definitions exactly as the reference ``prdc`` package (clovaai/generative-evaluation-prdc):
with ``r_i`` the distance from real sample ``i`` to its k-th nearest other real sample (the
(k+1)-th smallest distance counting itself) and ``f_j`` likewise among fakes,

    precision = mean_j [ exists i: d(real_i, fake_j) < r_i ]
    recall    = mean_i [ exists j: d(real_i, fake_j) < f_j ]
    density   = (1 / k) mean_j  #{i: d(real_i, fake_j) < r_i}
    coverage  = mean_i [ min_j d(real_i, fake_j) < r_i ]

The reference builds full N x M distance matrices; here rows are processed in chunks with
``torch.cdist`` in float64 so 10k x 10k needs no 800 MB matrix.
"""
from __future__ import annotations

import torch

from ..errors import GanforgeError

CHUNK = 1024


def _as64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to("cpu", torch.float64).reshape(len(x), -1)


def knn_radii(feats: torch.Tensor, k: int, chunk: int = CHUNK) -> torch.Tensor:
    """Distance from each row to its k-th nearest *other* row ([N] float64)."""
    x = _as64(feats)
    n = len(x)
    if not 1 <= k < n:
        raise GanforgeError(f"k-nearest-neighbour radius needs 1 <= k < number of samples; got k={k}, n={n}")
    out = torch.empty(n, dtype=torch.float64)
    for s in range(0, n, chunk):
        d = torch.cdist(x[s : s + chunk], x)
        rows = torch.arange(len(d))
        d[rows, rows + s] = 0.0  # self-distance exactly 0, as scikit-learn's pairwise_distances gives
        out[s : s + chunk] = d.topk(k + 1, dim=1, largest=False).values[:, -1]
    return out


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5, chunk: int = CHUNK) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` features ([N, d], [M, d])."""
    r, f = _as64(real), _as64(fake)
    if r.shape[1] != f.shape[1]:
        raise GanforgeError(f"PRDC feature sizes differ: {r.shape[1]} vs {f.shape[1]}")
    real_radii = knn_radii(r, k, chunk)
    fake_radii = knn_radii(f, k, chunk)
    inside_count = torch.zeros(len(f), dtype=torch.int64)  # per fake: reals whose ball contains it
    recalled = torch.zeros(len(r), dtype=torch.bool)  # per real: inside some fake's ball
    nearest_fake = torch.full((len(r),), float("inf"), dtype=torch.float64)
    for s in range(0, len(f), chunk):
        d = torch.cdist(f[s : s + chunk], r)  # [fakes in chunk, reals]
        inside_count[s : s + chunk] = (d < real_radii[None, :]).sum(1)
        recalled |= (d < fake_radii[s : s + chunk, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    return {
        "precision": (inside_count > 0).double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": inside_count.double().mean().item() / k,
        "coverage": (nearest_fake < real_radii).double().mean().item(),
    }
