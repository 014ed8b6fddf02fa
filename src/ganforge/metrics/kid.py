"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel.

Reference (torch-fidelity ``metric_kid``, after the MMD-GAN code):

    k(x, y) = (x . y / d + 1)^3
    MMD^2_u = [sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)] / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2

averaged over ``subsets`` random subsets of ``m`` samples drawn without replacement from each
set (``numpy.random.RandomState(seed).choice``, first set then second, as torch-fidelity
draws them); reported as the mean and the population standard deviation over subsets.
Unlike FD it is unbiased, so it can be slightly negative when the two sets match.
Kernels are computed in float64 (torch-fidelity uses the features' float32).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GanforgeError


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3, coef0: float = 1.0) -> torch.Tensor:
    """``(x . y / d + coef0)^degree`` for [..., m, d] batches of rows."""
    k = x @ y.transpose(-1, -2)
    k.div_(x.shape[-1]).add_(coef0)
    return k.pow_(degree) if degree != 3 else (k * k).mul_(k)  # k*k*k: much faster than a generic pow


def mmd2_unbiased(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 from [..., m, m] kernel matrices (one value per leading index)."""
    m = k_xx.shape[-1]
    sum_xx = k_xx.sum((-1, -2)) - k_xx.diagonal(dim1=-2, dim2=-1).sum(-1)
    sum_yy = k_yy.sum((-1, -2)) - k_yy.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum((-1, -2)) / (m * m)


def kernel_inception_distance(
    feats_a: torch.Tensor, feats_b: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0,
) -> tuple[float, float]:
    """``(mean, std)`` of unbiased MMD^2 over random subsets; ``subset_size`` is capped at both set sizes."""
    a = feats_a.detach().to("cpu", torch.float64).reshape(len(feats_a), -1)
    b = feats_b.detach().to("cpu", torch.float64).reshape(len(feats_b), -1)
    if a.shape[1] != b.shape[1]:
        raise GanforgeError(f"KID feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise GanforgeError(f"KID needs at least 2 samples in each set, got {len(a)} and {len(b)}")
    rng = np.random.RandomState(seed)
    idx = [(rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False)) for _ in range(subsets)]
    # Several subsets per batched matmul (kernels of at most ~4M entries): fewer, larger ops.
    per_batch = max(1, (1 << 22) // (m * m))
    mmds = []
    for s in range(0, subsets, per_batch):
        ia = torch.from_numpy(np.stack([i for i, _ in idx[s : s + per_batch]]))
        ib = torch.from_numpy(np.stack([j for _, j in idx[s : s + per_batch]]))
        x, y = a[ia], b[ib]  # [B, m, d]
        mmds.append(mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y)))
    out = torch.cat(mmds).numpy()
    return float(out.mean()), float(out.std())
