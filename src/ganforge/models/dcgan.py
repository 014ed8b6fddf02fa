"""DCGAN (Radford et al. 2015): strided (transposed) convolutions, batch norm, ReLU in G,
LeakyReLU(0.2) in D, no fully connected hidden layers, tanh output.

Sized from the resolution: G projects z to 4x4 with a 4x4 transposed convolution, then
doubles the resolution per block; D mirrors it and ends in a 4x4 convolution to one logit.
Channels halve as resolution doubles, starting from ``width * 2**(blocks-1)`` at 4x4.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..nn import dcgan_init, log2_resolution
from ..nn.anticollapse import MinibatchStd


def _channels(resolution: int, width: int, max_channels: int) -> list[int]:
    """Channels at 4x4, 8x8, ..., resolution/2 (the last hidden feature map)."""
    blocks = log2_resolution(resolution) - 2  # upsampling steps from 4x4
    return [min(width * 2 ** (blocks - 1 - i), max_channels) for i in range(blocks)]


def _up(a: int, b: int, upsample: str, bias: bool) -> list[nn.Module]:
    """Double the resolution: a 4x4 stride-2 transposed convolution (Radford et al.), or bilinear
    resizing then a 3x3 convolution, which has no checkerboard artifacts (Odena et al. 2016)."""
    if upsample == "transpose":
        return [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=bias)]
    return [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(a, b, 3, 1, 1, bias=bias)]


class DCGANGenerator(nn.Module):
    """``upsample``: ``transpose`` (the paper's) or ``bilinear`` (resize-convolution)."""

    def __init__(self, z_dim: int, resolution: int, channels: int, width: int = 64, max_channels: int = 512,
                 upsample: str = "transpose") -> None:
        super().__init__()
        self.z_dim = z_dim
        ch = _channels(resolution, width, max_channels)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ch[0]),
                                   nn.ReLU(True)]
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [*_up(a, b, upsample, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [*_up(ch[-1], channels, upsample, bias=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, C, R, R]
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """``mbstd``: group size of a minibatch-stddev channel appended before the last conv (0: none)."""

    def __init__(self, resolution: int, channels: int, width: int = 64, max_channels: int = 512,
                 mbstd: int = 0) -> None:
        super().__init__()
        ch = _channels(resolution, width, max_channels)[::-1]  # resolution/2 ... 4x4
        layers: list[nn.Module] = [nn.Conv2d(channels, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        if mbstd:
            layers.append(MinibatchStd(mbstd))
        layers.append(nn.Conv2d(ch[-1] + (1 if mbstd else 0), 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, R, R] -> [N] logits
        return self.net(x).flatten()
