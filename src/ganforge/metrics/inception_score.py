"""Inception Score (Salimans et al. 2016) from Inception logits, computed as torch-fidelity does.

Reference (torch-fidelity ``metric_isc.isc_features_to_metric``): shuffle the N logits with
``numpy.random.RandomState(seed).permutation``, cut them into ``splits`` consecutive parts
``[i N // splits, (i + 1) N // splits)``, and for each part

    IS_i = exp( mean_n KL(p(y | x_n) || p(y)) ),   p(y) = mean_n p(y | x_n)

in float64; report the mean and population standard deviation of the IS_i. torch-fidelity
feeds it the bias-free logits (``logits_unbiased``) of the FID Inception network.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GanforgeError


def inception_score(
    logits: torch.Tensor, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> tuple[float, float]:
    """``(mean, std)`` of the Inception Score over ``splits`` parts of ``logits`` [N, classes]."""
    if logits.dim() != 2 or len(logits) < splits:
        raise GanforgeError(
            f"Inception Score needs logits [N, C] with N >= splits ({splits}), got {tuple(logits.shape)}")
    n = len(logits)
    x = logits.detach().cpu()
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    x = x.double()
    p, log_p = x.softmax(1), x.log_softmax(1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(0, keepdim=True)
        kl = (p[lo:hi] * (log_p[lo:hi] - q.log())).sum(1).mean()
        scores.append(kl.exp().item())
    return float(np.mean(scores)), float(np.std(scores))
