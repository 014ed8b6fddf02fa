"""Fréchet distance between Gaussians fitted to two feature sets (FID when the features are Inception's).

Reference formula (Heusel et al. 2017; pytorch-fid, torchmetrics, torch-fidelity):

    FD = ||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))

pytorch-fid takes ``scipy.linalg.sqrtm(S_a @ S_b)`` (adding 1e-6 I when that is not finite
and dropping a negligible imaginary part); torchmetrics / torch-fidelity use
``Tr((S_a S_b)^(1/2)) = sum_i sqrt(lambda_i(S_a S_b)).real``. Here the same eigenvalues are
taken from the symmetric matrix ``A S_b A`` with ``A = S_a^(1/2)``, which is similar to
``S_a S_b``: its eigenvalues are real and >= 0 up to rounding, so a singular covariance
(fewer samples than dimensions) needs no offset and no complex arithmetic; negative rounding
residue is clipped to 0, exactly what taking ``sqrt(.).real`` of it does in torchmetrics.

Statistics are accumulated in float64 (sums of x and of x x^T, as torchmetrics does), so
they do not depend on how the features were batched.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GanforgeError


class FeatureStats:
    """Streaming mean / covariance of feature batches in float64.

    ``update`` any number of batches of any size, then ``compute()`` -> ``(mu [d], sigma [d, d])``
    with the unbiased (n - 1) covariance, as ``numpy.cov`` gives.
    """

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, feats: torch.Tensor) -> None:
        f = feats.detach().to("cpu", torch.float64).reshape(len(feats), -1)
        self.n += len(f)
        self.sum += f.sum(0)
        self.outer += f.T @ f

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.n < 2:
            raise GanforgeError(f"need at least 2 samples for a covariance, got {self.n}")
        mu = self.sum / self.n
        sigma = (self.outer - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return mu, (sigma + sigma.T) / 2


def feature_statistics(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu, sigma)`` of an [N, d] feature matrix in float64 (two-pass: centred before the product)."""
    f = feats.detach().to("cpu", torch.float64).reshape(len(feats), -1)
    if len(f) < 2:
        raise GanforgeError(f"need at least 2 samples for a covariance, got {len(f)}")
    mu = f.mean(0)
    c = f - mu
    return mu, (c.T @ c) / (len(f) - 1)


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((m + m.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def trace_sqrt_product(sigma_a: torch.Tensor, sigma_b: torch.Tensor) -> float:
    """``Tr((S_a S_b)^(1/2))`` for symmetric PSD ``S_a``, ``S_b`` (see the module docstring).

    torch.linalg rather than numpy: it follows torch's thread setting, whereas OpenBLAS
    threads can slow a 2048-d eigendecomposition tenfold on a busy machine.
    """
    a = _sqrt_psd(sigma_a)
    m = a @ sigma_b @ a
    return float(torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum())


def _f64(t: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.as_tensor(t).detach().to("cpu", torch.float64)


def frechet_distance_from_stats(
    mu_a: torch.Tensor | np.ndarray, sigma_a: torch.Tensor | np.ndarray,
    mu_b: torch.Tensor | np.ndarray, sigma_b: torch.Tensor | np.ndarray,
) -> float:
    """FD between N(mu_a, sigma_a) and N(mu_b, sigma_b), computed in float64."""
    mu_a, mu_b = _f64(mu_a).reshape(-1), _f64(mu_b).reshape(-1)
    sigma_a, sigma_b = _f64(sigma_a).reshape(len(mu_a), -1), _f64(sigma_b).reshape(len(mu_b), -1)
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape != (len(mu_a), len(mu_a)):
        raise GanforgeError(
            f"Fréchet statistics do not match: mu {tuple(mu_a.shape)} vs {tuple(mu_b.shape)}, "
            f"sigma {tuple(sigma_a.shape)} vs {tuple(sigma_b.shape)}"
        )
    if not all(torch.isfinite(t).all() for t in (mu_a, mu_b, sigma_a, sigma_b)):
        raise GanforgeError("Fréchet statistics contain NaN or Inf (non-finite features)")
    diff = mu_a - mu_b
    fd = diff @ diff + sigma_a.trace() + sigma_b.trace() - 2 * trace_sqrt_product(sigma_a, sigma_b)
    return float(fd)


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """FD between Gaussians fitted to two [N, d] feature sets.

    With fewer samples than dimensions (e.g. a few hundred Inception features, 2048-d) the
    covariances are low-rank and the trace term is taken from the samples directly:
    with X = C_a / sqrt(n_a - 1), Y = C_b / sqrt(n_b - 1) (centred features), the nonzero
    eigenvalues of S_a S_b = X^T X Y^T Y are those of (X Y^T)(X Y^T)^T, so
    ``Tr((S_a S_b)^(1/2))`` is the sum of the singular values of the small n_a x n_b matrix X Y^T:
    the same number, without any d x d eigendecomposition.
    """
    a = feats_a.detach().to("cpu", torch.float64).reshape(len(feats_a), -1)
    b = feats_b.detach().to("cpu", torch.float64).reshape(len(feats_b), -1)
    if min(len(a), len(b)) > a.shape[1] or a.shape[1] != b.shape[1]:
        return frechet_distance_from_stats(*feature_statistics(a), *feature_statistics(b))
    if min(len(a), len(b)) < 2:
        raise GanforgeError(f"need at least 2 samples for a covariance, got {len(a)} and {len(b)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise GanforgeError("Fréchet statistics contain NaN or Inf (non-finite features)")
    mu_a, mu_b = a.mean(0), b.mean(0)
    x = (a - mu_a) / (len(a) - 1) ** 0.5
    y = (b - mu_b) / (len(b) - 1) ** 0.5
    diff = mu_a - mu_b
    tr_sqrt = torch.linalg.svdvals(x @ y.T).sum()
    return float(diff @ diff + x.square().sum() + y.square().sum() - 2 * tr_sqrt)
