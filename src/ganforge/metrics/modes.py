"""Mode-collapse metrics for 2-D Gaussian mixtures (VEEGAN / PacGAN protocol).

Rule, as in PacGAN's evaluation code (fjxmlzn/PacGAN,
synthetic_data_experiments/PacGAN/pacgan/extensions.py, ``MetricLogger``, ``dis_thre=3``):

* each sample is assigned to the mode nearest in std-normalised distance
  ``sqrt(sum((x - mu_k)^2 / std^2))`` (with one shared isotropic std: the nearest mean);
* it is *high quality* when that distance is ``< 3`` (within three standard deviations);
* ``modes`` = number of modes with at least one high-quality sample
  (``len(numpy.nonzero(detail_of_coverage)[0])`` there);
* ``hq_frac`` = high-quality samples / all samples.

``reverse_kl`` = KL(p || uniform) where ``p`` is the histogram of high-quality samples over
the K modes, normalised: ``sum_{k: p_k > 0} p_k log(p_k K)``. This is PacGAN's ``KLD(p, q)``
(stacked-MNIST code, ``VEEGAN_experiment/model.py``), which uses no epsilon: zero bins are
skipped (0 log 0 = 0) and the uniform q is never 0. With no high-quality sample at all the
histogram is undefined and ``reverse_kl`` is NaN.
"""
from __future__ import annotations

import math

import torch

from ..errors import GanforgeError

THRESHOLD = 3.0


def mode_histogram(points: torch.Tensor, means: torch.Tensor, std: float, threshold: float = THRESHOLD) -> torch.Tensor:
    """High-quality sample counts per mode ([K] int64)."""
    if points.dim() != 2 or means.dim() != 2 or points.shape[1] != means.shape[1]:
        raise GanforgeError(f"mode metrics need points [N, D] and means [K, D], got {tuple(points.shape)}, "
                            f"{tuple(means.shape)}")
    if not std > 0:
        raise GanforgeError(f"mixture std must be positive, got {std}")
    x = points.detach().to("cpu", torch.float64)
    mu = means.detach().to("cpu", torch.float64)
    counts = torch.zeros(len(mu), dtype=torch.int64)
    for s in range(0, len(x), 65536):
        d = torch.cdist(x[s : s + 65536], mu) / std  # std-normalised distance to every mode
        nearest, k = d.min(1)
        hq = nearest < threshold  # NaN points compare False: never high quality
        counts += torch.bincount(k[hq], minlength=len(mu))
    return counts


def reverse_kl_uniform(counts: torch.Tensor) -> float:
    """KL(counts / sum || uniform over len(counts)), zero bins skipped; NaN for an empty histogram."""
    total = int(counts.sum())
    if total == 0:
        return math.nan
    p = counts.double() / total
    p = p[p > 0]
    return float((p * torch.log(p * len(counts))).sum())


def mode_metrics(
    points: torch.Tensor, means: torch.Tensor, std: float, threshold: float = THRESHOLD
) -> dict[str, float]:
    """``modes`` (int), ``hq_frac`` and ``reverse_kl`` of generated 2-D points against mixture modes."""
    counts = mode_histogram(points, means, std, threshold)
    return {
        "modes": int((counts > 0).sum()),
        "hq_frac": float(counts.sum()) / max(len(points), 1),
        "reverse_kl": reverse_kl_uniform(counts),
    }
