"""Class-conditional generators and discriminators built around the DCGAN / MLP bodies.

Three ways to condition, one per method:

- ``concat`` (cGAN, Mirza & Osindero 2014): a label embedding is concatenated to z in G, and
  to the input of D (as constant feature maps for images).
- ``projection`` (Miyato & Koyama 2018): D's logit is ``psi(phi(x)) + <embed(y), phi(x)>``;
  G uses class-conditional batch norm (per-class gain and bias) in place of batch norm.
- ``acgan`` (Odena et al. 2017): G as in ``concat``; D is unconditional but has a second head
  that classifies the sample; both players also minimise its cross-entropy.

Discriminators return logits ``[N]``; the ``acgan`` one returns ``(logits [N], class_logits [N, K])``.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

Tensor = torch.Tensor
MODES = ("concat", "projection", "acgan")


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine; gain and bias looked up per class (de Vries et al. 2017)."""

    def __init__(self, bn: nn.BatchNorm1d | nn.BatchNorm2d, num_classes: int) -> None:
        super().__init__()
        self.bn = type(bn)(bn.num_features, affine=False)
        self.gain = nn.Embedding(num_classes, bn.num_features)
        self.bias = nn.Embedding(num_classes, bn.num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)
        self.labels: Tensor | None = None  # set by ConditionalGenerator before each forward

    def forward(self, x: Tensor) -> Tensor:
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        return self.bn(x) * self.gain(self.labels).view(shape) + self.bias(self.labels).view(shape)


def _swap_batch_norms(module: nn.Module, num_classes: int) -> list[ConditionalBatchNorm]:
    swapped = []
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            cbn = ConditionalBatchNorm(child, num_classes)
            setattr(module, name, cbn)
            swapped.append(cbn)
        else:
            swapped += _swap_batch_norms(child, num_classes)
    return swapped


class ConditionalGenerator(nn.Module):
    """``body`` maps [N, z_dim (+ embed_dim for concat)] to samples; labels condition it."""

    def __init__(self, body: nn.Module, num_classes: int, embed_dim: int, mode: str) -> None:
        super().__init__()
        self.body, self.mode = body, mode
        self.embed = nn.Embedding(num_classes, embed_dim) if mode != "projection" else None
        self.cbns = _swap_batch_norms(body, num_classes) if mode == "projection" else []

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        for cbn in self.cbns:
            cbn.labels = labels
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.body(z)


def head_features(body: nn.Module) -> int:
    """Size of phi(x), the input of ``body.net[-1]`` (a 4x4 conv to one logit, or a linear layer)."""
    head = body.net[-1]
    return head.in_channels * head.kernel_size[0] * head.kernel_size[1] if isinstance(head, nn.Conv2d) \
        else head.in_features


class ConditionalDiscriminator(nn.Module):
    """``body.net`` is a Sequential whose last layer maps features phi(x) to one logit."""

    def __init__(self, body: nn.Module, num_classes: int, embed_dim: int, mode: str, image: bool) -> None:
        super().__init__()
        feature_dim = head_features(body)
        self.mode, self.image = mode, image
        self.features, self.head = body.net[:-1], body.net[-1]  # body itself is not kept: no shared weights
        if mode == "concat":
            self.embed = nn.Embedding(num_classes, embed_dim)
        elif mode == "projection":
            self.embed = nn.Embedding(num_classes, feature_dim)
            nn.init.normal_(self.embed.weight, 0, 0.02)
        else:
            self.classify = nn.Linear(feature_dim, num_classes)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if self.mode == "concat":
            e = self.embed(labels)  # [N, E]
            if self.image:
                x = torch.cat([x, e[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)  # [N, C+E, H, W]
            else:
                x = torch.cat([x.flatten(1), e], 1)
        if not self.image:
            x = x.flatten(1)
        phi = self.features(x)
        logits = self.head(phi).flatten()  # [N]
        if self.mode == "projection":
            return logits + (self.embed(labels) * phi.flatten(1)).sum(1)
        if self.mode == "acgan":
            return logits, self.classify(phi.flatten(1))
        return logits


def conditional_nets(data_shape: tuple[int, ...], kind: str, num_classes: int, mode: str, z_dim: int, width: int,
                     depth: int, max_channels: int, upsample: str = "transpose", g_width: int | None = None,
                     ) -> tuple[ConditionalGenerator, ConditionalDiscriminator]:
    """DCGAN-style convolutional nets for images, MLPs for vectors, conditioned by ``mode``; G's base width is
    ``g_width`` (default ``width``)."""
    g_width = g_width or width
    g_mode = "concat" if mode == "projection" and kind != "image" else mode  # an MLP G has no batch norm
    embed = min(max(num_classes, 8), 64)
    g_in = z_dim + (0 if g_mode == "projection" else embed)
    d_in_extra = embed if mode == "concat" else 0
    if kind == "image":
        from .dcgan import DCGANDiscriminator, DCGANGenerator

        c, r, _ = data_shape
        G = DCGANGenerator(g_in, r, c, g_width, max_channels, upsample)
        D = DCGANDiscriminator(r, c + d_in_extra, width, max_channels)
    else:
        from .mlp import MLPDiscriminator, MLPGenerator

        G = MLPGenerator(g_in, data_shape, g_width, depth, tanh=False)
        D = MLPDiscriminator((math.prod(data_shape) + d_in_extra,), width, depth)
    return (ConditionalGenerator(G, num_classes, embed, g_mode),
            ConditionalDiscriminator(D, num_classes, embed, mode, kind == "image"))


class ClassHeadDiscriminator(nn.Module):
    """An unconditional D with a second head classifying the sample into ``k`` classes: the
    auxiliary network Q of InfoGAN (Chen et al. 2016), sharing D's body. Returns (logits, class logits)."""

    def __init__(self, body: nn.Module, k: int) -> None:
        super().__init__()
        self.features, self.head = body.net[:-1], body.net[-1]
        self.classify = nn.Linear(head_features(body), k)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        phi = self.features(x)
        return self.head(phi).flatten(), self.classify(phi.flatten(1))
