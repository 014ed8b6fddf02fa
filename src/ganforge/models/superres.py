"""Super-resolution networks: SRResNet (SRGAN's generator), RRDBNet (ESRGAN's) and a VGG-style discriminator.

Generators map LR images in model space [-1, 1] to ``scale`` x larger ones (scale 2 or 4, one x2
stage per factor of two). With ``residual`` they add their output to the bicubic upsampling of the
input, so they learn only the detail bicubic misses (as VDSR does; the papers' networks predict the
whole image: ``residual=False``). Both are fully convolutional: any input size works, which is what
tiled inference relies on.

* :class:`SRResNet` (Ledig et al. 2017): 9x9 head, ``blocks`` residual blocks of two 3x3 convs
  (batch norm optional: ``norm``, off by default as EDSR and ESRGAN found it hurts), a long skip,
  sub-pixel (PixelShuffle) x2 stages with PReLU, 9x9 tail.
* :class:`RRDBNet` (Wang et al. 2018): residual-in-residual dense blocks (three 5-conv dense blocks
  each, residual scaling 0.2, no batch norm, weights initialised at 0.1 x Kaiming), nearest-neighbour
  x2 stages with a 3x3 conv and LeakyReLU.
* :class:`VGGDiscriminator` (both papers): 3x3 conv pairs, the second of each with stride 2, doubling
  channels, batch norm and LeakyReLU(0.2), down to 4x4, then dense 100 -> 1. ``features()`` returns
  the activation of every stage, for a content loss in the discriminator's own feature space.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError

SCALES = (2, 4)


def _stages(scale: int) -> int:
    if scale not in SCALES:
        raise ValueError(f"scale {scale}; expected one of {SCALES}")
    return int(math.log2(scale))


class _Residual(nn.Module):
    def __init__(self, width: int, norm: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(width, width, 3, 1, 1, bias=not norm)]
        layers += [nn.BatchNorm2d(width)] if norm else []
        layers += [nn.PReLU(width), nn.Conv2d(width, width, 3, 1, 1, bias=not norm)]
        layers += [nn.BatchNorm2d(width)] if norm else []
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Upscaler(nn.Module):
    """Shared by both generators: the optional bicubic skip around the network, and ``taken_at``, the
    step at which a frozen copy was taken (-1: never; recipes/superres.py keeps the PSNR-oriented copy)."""

    scale: int
    residual: bool

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("taken_at", torch.tensor(-1, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        if self.residual:
            y = y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return y

    def net(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SRResNet(_Upscaler):
    def __init__(self, channels: int = 3, width: int = 64, blocks: int = 16, scale: int = 4, norm: bool = False,
                 residual: bool = True) -> None:
        super().__init__()
        self.scale, self.residual, self.blocks = scale, residual, blocks
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, 1, 4), nn.PReLU(width))
        self.body = nn.Sequential(*[_Residual(width, norm) for _ in range(blocks)],
                                  nn.Conv2d(width, width, 3, 1, 1, bias=not norm),
                                  *([nn.BatchNorm2d(width)] if norm else []))
        up: list[nn.Module] = []
        for _ in range(_stages(scale)):
            up += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.up = nn.Sequential(*up)
        self.tail = nn.Conv2d(width, channels, 9, 1, 4)

    def net(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(self.up(h + self.body(h)))

    @property
    def receptive_radius(self) -> int:
        """LR pixels on each side that reach an output pixel: 9x9 head, two 3x3 per block, body conv, up, tail."""
        return 4 + 2 * self.blocks + 1 + 1 + math.ceil(4 / self.scale)


class _DenseBlock(nn.Module):
    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(width + i * growth, growth if i < 4 else width, 3, 1, 1)
                                   for i in range(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i, conv in enumerate(self.convs):
            y = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(F.leaky_relu(y, 0.2))
        return x + 0.2 * y


class _RRDB(nn.Module):
    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[_DenseBlock(width, growth) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.blocks(x)


class RRDBNet(_Upscaler):
    def __init__(self, channels: int = 3, width: int = 64, growth: int = 32, blocks: int = 23, scale: int = 4,
                 residual: bool = True) -> None:
        super().__init__()
        self.scale, self.residual, self.blocks = scale, residual, blocks
        self.head = nn.Conv2d(channels, width, 3, 1, 1)
        self.body = nn.Sequential(*[_RRDB(width, growth) for _ in range(blocks)], nn.Conv2d(width, width, 3, 1, 1))
        self.ups = nn.ModuleList(nn.Conv2d(width, width, 3, 1, 1) for _ in range(_stages(scale)))
        self.hr = nn.Conv2d(width, width, 3, 1, 1)
        self.tail = nn.Conv2d(width, channels, 3, 1, 1)
        for m in self.body.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                m.weight.data.mul_(0.1)
                nn.init.zeros_(m.bias)

    @property
    def receptive_radius(self) -> int:
        """LR pixels on each side that reach an output pixel: 15 chained 3x3 convs per RRDB, head, body, up, tail."""
        return 1 + 15 * self.blocks + 1 + 2

    def net(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body(h)
        for conv in self.ups:
            h = F.leaky_relu(conv(F.interpolate(h, scale_factor=2, mode="nearest")), 0.2)
        return self.tail(F.leaky_relu(self.hr(h), 0.2))


class VGGDiscriminator(nn.Module):
    def __init__(self, resolution: int, channels: int = 3, width: int = 64, max_channels: int = 512) -> None:
        super().__init__()
        side, n = resolution, 0  # stride-2 stages while the side halves to 4 px or more (64 -> 4, 96 -> 6)
        while side % 2 == 0 and side // 2 >= 4:
            side, n = side // 2, n + 1
        if n == 0:
            raise ConfigError(f"resolution={resolution}: the discriminator needs an HR patch side of at least 8 px "
                              "that halves at least once")
        stages: list[nn.Module] = []
        c_in = channels
        for i in range(n):
            c = min(width * 2**i, max_channels)
            first = [nn.Conv2d(c_in, c, 3, 1, 1)] + ([nn.BatchNorm2d(c)] if i else [])
            stages.append(nn.Sequential(*first, nn.LeakyReLU(0.2, True), nn.Conv2d(c, c, 4, 2, 1, bias=False),
                                        nn.BatchNorm2d(c), nn.LeakyReLU(0.2, True)))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, 100), nn.LeakyReLU(0.2, True),
                                  nn.Linear(100, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, R, R] -> [N] logits
        return self.head(self.features(x)[-1]).flatten()
