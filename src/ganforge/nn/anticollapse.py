"""Discriminator-side remedies for mode collapse, shared by every model family.

They all give D a view of the batch as a distribution rather than of samples one at a time
(minibatch stddev, PacGAN packing), or keep D smooth enough that G gets useful gradients
(spectral normalization).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm


class MinibatchStd(nn.Module):
    """Karras et al. 2018 (ProGAN/StyleGAN): append the mean over features of the per-feature std
    within groups of ``group`` samples, as one extra feature (MLP) or channel (conv).

    A collapsed generator makes that std small, which D can see and punish. Groups are strided
    (sample j is in group j mod N/g), as in Karras et al. 2020's code; the group shrinks to the largest
    divisor of the batch that is <= ``group``.
    """

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, F] -> [N, F+1] or [N, C, H, W] -> [N, C+1, H, W]
        n = len(x)
        g = min(self.group, n)
        while n % g:
            g -= 1
        y = x.reshape(g, n // g, *x.shape[1:]).float()  # [g, N/g, ...]
        y = (y - y.mean(0)).pow(2).mean(0).add(1e-8).sqrt()  # [N/g, ...] std over each group
        y = y.flatten(1).mean(1).to(x.dtype).repeat(g)  # [N]: sample j gets its group's value
        y = y.view(n, 1, *[1] * (x.dim() - 2)).expand(n, 1, *x.shape[2:])
        return torch.cat([x, y], 1)


def spectral_norm_layers(module: nn.Module) -> nn.Module:
    """Miyato et al. 2018: divide every Linear/Conv2d weight by its largest singular value (one
    power iteration per forward), bounding each layer's Lipschitz constant by 1."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            spectral_norm(layer)
    return module


def pack(x: torch.Tensor, k: int) -> torch.Tensor:
    """PacGAN (Lin et al. 2018): ``k`` consecutive samples become one along channels/features.

    ``[N, C, ...] -> [N/k, k*C, ...]``; D judges the pack jointly, so a pack of near-identical
    samples from a collapsed G is easy to tell from a pack of independent real ones.
    """
    if k == 1:
        return x
    n = len(x)
    if n % k:
        raise ValueError(f"a batch of {n} cannot be packed in groups of {k}")
    return x.reshape(n // k, k * x.shape[1], *x.shape[2:])


def packed_shape(shape: tuple[int, ...], k: int) -> tuple[int, ...]:
    """The shape of one packed sample: ``(k*C, ...)``."""
    return (shape[0] * k, *shape[1:])


__all__ = ["MinibatchStd", "pack", "packed_shape", "spectral_norm_layers"]
