"""Multilayer-perceptron generator and discriminator (Goodfellow et al. 2014).

They work on any sample shape: 2D points or flattened images. Image generators end in
tanh (the [-1, 1] model space); point generators are linear.

For points the nets work in standardized coordinates: D's input goes through ``(x - center) /
scale`` and G's output through the inverse, with ``center``/``scale`` buffers fitted once to the
training data (:meth:`Standardize.fit`). A ReLU net's first-layer hyperplanes start within about
one unit of the origin, so without this a mixture spread over [-4, 4]^2 gets almost none of them
near its outer modes and D cannot carve bumps there; standardizing makes a recipe behave the
same on a ring of radius 1 and a grid 10 units wide. The buffers travel with the weights.
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


class Standardize(nn.Module):
    """``(x - center) / scale``, or its inverse; identity until :meth:`fit`. One scale for all
    features (the RMS of their stds), so isotropic modes stay isotropic."""

    def __init__(self, features: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.register_buffer("center", torch.zeros(features))
        self.register_buffer("scale", torch.ones(()))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, repeat: int = 1) -> None:
        """Statistics of samples ``x`` [N, F']; ``repeat`` tiles the center for packed inputs (F = repeat * F')."""
        x = x.flatten(1).double()
        self.center.copy_(x.mean(0).repeat(repeat))
        self.scale.copy_(x.var(0).mean().sqrt().clamp_min(1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, F] -> [N, F]
        return x * self.scale + self.center if self.inverse else (x - self.center) / self.scale


class MLPGenerator(nn.Module):
    """``standardize``: outputs pass through a fitted :class:`Standardize` inverse (point data)."""

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], width: int, depth: int, tanh: bool,
                 standardize: bool = False) -> None:
        super().__init__()
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        layers = _mlp([z_dim] + [width] * depth + [math.prod(out_shape)], nn.ReLU())
        if tanh:
            layers.append(nn.Tanh())
        if standardize:
            layers.append(Standardize(math.prod(out_shape), inverse=True))
        self.net = nn.Sequential(*layers)

    @torch.no_grad()
    def calibrate(self, z: torch.Tensor) -> None:
        """Data-dependent init of the output layer (cf. Salimans & Kingma 2016; Mishkin & Matas 2016):
        rescale and shift it so G's samples from latents ``z`` have mean 0 and unit spread in the
        standardized coordinates, i.e. start spread like the data.

        With the default init they start within a few percent of the data's scale, all latents on
        nearly one point: D then pushes that blob around as a whole, and separate modes are found
        only after a long collapsed phase. Spread out, each part of the latent starts near some mode.
        """
        layers = list(self.net)
        last = max(i for i, m in enumerate(layers) if isinstance(m, nn.Linear))
        u = nn.Sequential(*layers[: last + 1])(z)  # [N, F] before tanh / the inverse standardization
        mean, std = u.mean(0), u.var(0).mean().sqrt().clamp_min(1e-12)
        layers[last].weight.div_(std)
        layers[last].bias.sub_(mean).div_(std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, *out_shape]
        return self.net(z).view(len(z), *self.out_shape)


class MLPDiscriminator(nn.Module):
    """``mbstd``: group size of a minibatch-stddev feature appended before the last layer (0: none).
    ``standardize``: inputs pass through a fitted :class:`Standardize` first (point data)."""

    def __init__(self, in_shape: tuple[int, ...], width: int, depth: int, mbstd: int = 0,
                 standardize: bool = False) -> None:
        super().__init__()
        layers = _mlp([math.prod(in_shape)] + [width] * depth + [1], nn.LeakyReLU(0.2))
        if mbstd:
            layers[-1:] = [MinibatchStd(mbstd), nn.Linear(width + 1, 1)]
        if standardize:
            layers.insert(0, Standardize(math.prod(in_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, *in_shape] -> [N] logits
        return self.net(x.flatten(1)).squeeze(1)
