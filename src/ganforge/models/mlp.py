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
    """``standardize``: outputs pass through a fitted :class:`Standardize` inverse (point data).

    ``prototypes``: for point data whose latent starts with a ``prototypes``-way one-hot code
    (scaled by sqrt(k), see ``GANRecipe.latent``), G adds a fixed anchor point per category to the
    MLP's output: ``G(z) = MLP(z) + P[code]``. :meth:`calibrate` sets the anchors to random
    training samples (a buffer: they travel with the weights but are not trained), so the
    categories are spread over the modes in proportion to their mass and the MLP only learns the
    offsets. Measured on grid25 (benchmarks/toy2d.py): without anchors the interior modes end with
    about 3x the mass of the corners (reverse KL up to 0.07); learned anchors jitter under Adam and
    widen the modes.
    """

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], width: int, depth: int, tanh: bool,
                 standardize: bool = False, prototypes: int = 0) -> None:
        super().__init__()
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        layers = _mlp([z_dim] + [width] * depth + [math.prod(out_shape)], nn.ReLU())
        if tanh:
            layers.append(nn.Tanh())
        if standardize:
            layers.append(Standardize(math.prod(out_shape), inverse=True))
        elif prototypes:
            raise ValueError("prototypes need standardized point outputs")
        self.net = nn.Sequential(*layers)
        self.register_buffer("prototypes", torch.zeros(prototypes, math.prod(out_shape)) if prototypes else None)

    @torch.no_grad()
    def calibrate(self, z: torch.Tensor, data: torch.Tensor | None = None, gen: torch.Generator | None = None,
                  spread: float = 1.0) -> None:
        """Data-dependent init (cf. Salimans & Kingma 2016; Mishkin & Matas 2016): rescale and shift the
        output layer so the MLP's outputs for latents ``z`` have mean 0 and RMS spread ``spread`` in the
        standardized coordinates, and set the prototypes to random rows of ``data`` [N, F].

        Without prototypes, ``spread=1`` starts G's samples spread like the data. With the default init
        they start within a few percent of the data's scale, all latents on nearly one point: D then
        pushes that blob around as a whole, and separate modes are found only after a long collapsed
        phase. Spread out, each part of the latent starts near some mode - but more of them near the
        middle of the data; prototypes drawn from the data place them where its mass is instead.
        """
        layers = list(self.net)
        last = max(i for i, m in enumerate(layers) if isinstance(m, nn.Linear))
        u = nn.Sequential(*layers[: last + 1])(z)  # [N, F] before tanh / the inverse standardization
        mean, std = u.mean(0), u.var(0).mean().sqrt().clamp_min(1e-12)
        layers[last].weight.mul_(spread / std)
        layers[last].bias.sub_(mean).mul_(spread / std)
        if self.prototypes is not None and data is not None:
            k, unstandardize = len(self.prototypes), self.net[-1]
            idx = torch.randperm(len(data), generator=gen)[:k] if len(data) >= k else torch.randint(
                len(data), (k,), generator=gen)
            self.prototypes.copy_((data.flatten(1)[idx].to(self.prototypes) - unstandardize.center)
                                  / unstandardize.scale)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, *out_shape]
        if self.prototypes is None:
            return self.net(z).view(len(z), *self.out_shape)
        k = len(self.prototypes)
        h = self.net[:-1](z) + z[:, :k] @ self.prototypes / k**0.5  # the code is one-hot times sqrt(k)
        return self.net[-1](h).view(len(z), *self.out_shape)


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
