"""Multilayer-perceptron generator and discriminator (Goodfellow et al. 2014).

They work on any sample shape: 2D points or flattened images. Image generators end in
tanh (the [-1, 1] model space); point generators are linear.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..nn.anticollapse import MinibatchStd


def _mlp(sizes: list[int], act: nn.Module) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), act]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return layers


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, out_shape: tuple[int, ...], width: int, depth: int, tanh: bool) -> None:
        super().__init__()
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        layers = _mlp([z_dim] + [width] * depth + [math.prod(out_shape)], nn.ReLU())
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, *out_shape]
        return self.net(z).view(len(z), *self.out_shape)


class MLPDiscriminator(nn.Module):
    """``mbstd``: group size of a minibatch-stddev feature appended before the last layer (0: none)."""

    def __init__(self, in_shape: tuple[int, ...], width: int, depth: int, mbstd: int = 0) -> None:
        super().__init__()
        layers = _mlp([math.prod(in_shape)] + [width] * depth + [1], nn.LeakyReLU(0.2))
        if mbstd:
            layers[-1:] = [MinibatchStd(mbstd), nn.Linear(width + 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, *in_shape] -> [N] logits
        return self.net(x.flatten(1)).squeeze(1)
