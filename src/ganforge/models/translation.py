"""Networks of image-to-image translation: pix2pix's U-Net and PatchGAN, CycleGAN's ResNet generator.

Shapes follow the papers' reference implementations (Isola et al. 2017, Zhu et al. 2017), except that
a convolution followed by a normalization has no bias: the normalization subtracts it again, so its
gradient is zero up to rounding - and Adam would turn that rounding into full-size random steps.

* :class:`UNetGenerator` - encoder C64-C128-C256-C512-... (4x4 stride-2 convs, LeakyReLU 0.2; no
  norm on the first and innermost layers), decoder mirrored with transposed convs and ReLU, skip
  connections concatenating each encoder layer onto its decoder layer, dropout on the three decoder
  layers after the bottleneck, tanh out. It goes down to 1x1: ``log2(resolution)`` levels.
* :class:`PatchDiscriminator` - ``n_layers`` 4x4 stride-2 convs, one stride-1 conv, a 1-channel
  stride-1 conv: a map of logits, one per overlapping patch. n_layers 3 sees 70x70 pixels (the
  paper's 70x70 PatchGAN), 0 sees 10x10, 1 16x16, 2 34x34, 4 142x142 (:func:`patch_receptive_field`).
* :class:`ResnetGenerator` - c7s1-64, ``down`` stride-2 convs, ``blocks`` residual blocks
  (reflection padding), ``down`` stride-2 transposed convs, c7s1-out, tanh.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..errors import ConfigError

Tensor = torch.Tensor
NORMS = ("instance", "batch")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """CycleGAN's instance norm (no affine, no running stats) or batch norm."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ConfigError(f"translate.norm={kind!r} is not allowed; expected {' or '.join(NORMS)}")


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """N(0, 0.02) conv weights, N(1, 0.02) norm scales, zero biases (the reference implementation)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def unet_depth(resolution: int) -> int:
    """Levels of a U-Net that goes down to 1x1: the resolution must be a power of two >= 8."""
    depth = int(math.log2(resolution)) if resolution > 0 else 0
    if 2**depth != resolution or depth < 3:
        raise ConfigError(f"the pix2pix U-Net needs a resolution that is a power of two >= 8; got {resolution}")
    return depth


class UNetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, resolution: int, width: int = 64,
                 max_channels: int = 512, norm: str = "batch", dropout: float = 0.5) -> None:
        super().__init__()
        depth = unet_depth(resolution)
        ch = [min(width * 2**i, max_channels) for i in range(depth)]
        self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
        for i in range(depth):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if i == 0 else ch[i - 1], ch[i], 4, 2, 1, bias=i in (0, depth - 1)))
            if 0 < i < depth - 1:
                layers.append(norm_layer(norm, ch[i]))
            self.downs.append(nn.Sequential(*layers))
        for i in reversed(range(depth)):  # the decoder, innermost first
            cin = ch[i] if i == depth - 1 else 2 * ch[i]
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, out_channels if i == 0 else ch[i - 1], 4, 2, 1, bias=i == 0)]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(norm, ch[i - 1]))
                if dropout and depth - 4 <= i <= depth - 2:  # the 3 decoder layers after the bottleneck's
                    layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the first decoder layer directly
        for j, up in enumerate(self.ups):
            x = up(x if j == 0 else torch.cat([x, skips.pop()], 1))
        return x


def patch_receptive_field(n_layers: int) -> int:
    """Pixels one output logit of :class:`PatchDiscriminator` sees: 10, 16, 34, 70, 142 for 0, 1, 2, 3, 4."""
    if n_layers == 0:
        return 10  # one 4x4 stride-2 conv, then the 4x4 output conv
    rf = 4 + 3  # the last two stride-1 4x4 convs
    for _ in range(n_layers):
        rf = 2 * rf + 2
    return rf


def patch_layers_for(resolution: int, pixels: int = 0) -> int:
    """The n_layers whose receptive field is nearest ``pixels``; 0: the paper's 70 px at 256 px,
    scaled to ``resolution`` (at least one layer)."""
    target = pixels or 70 * resolution / 256
    layers = range(0 if pixels else 1, 7)
    return min(layers, key=lambda n: (abs(math.log(patch_receptive_field(n) / target)), n))


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "batch",
                 max_channels: int = 512) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for n in range(1, n_layers + 1):
            out = min(width * 2 ** min(n, 3), max_channels)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=False), norm_layer(norm, out), nn.LeakyReLU(0.2)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.receptive_field = patch_receptive_field(n_layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """[N, C, H, W] -> patch logits [N, 1, h, w]."""
        return self.net(x)


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: str, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False),
                                   norm_layer(norm, channels), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), norm_layer(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int = 64, blocks: int = 9, down: int = 2,
                 norm: str = "instance", max_channels: int = 512) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=False),
                                   norm_layer(norm, width), nn.ReLU()]
        ch = width
        for _ in range(down):
            out = min(2 * ch, max_channels)
            layers += [nn.Conv2d(ch, out, 3, 2, 1, bias=False), norm_layer(norm, out), nn.ReLU()]
            ch = out
        layers += [ResnetBlock(ch, norm) for _ in range(blocks)]
        for i in reversed(range(down)):
            out = min(width * 2**i, max_channels)
            layers += [nn.ConvTranspose2d(ch, out, 3, 2, 1, output_padding=1, bias=False),
                       norm_layer(norm, out), nn.ReLU()]
            ch = out
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.multiple = 2**down  # input sides must be multiples of this
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TwoWay(nn.Module):
    """CycleGAN's pair of networks, one per direction (generators) or domain (discriminators), so
    that one optimizer steps both, as in the reference implementation."""

    def __init__(self, ab: nn.Module, ba: nn.Module) -> None:
        super().__init__()
        self.ab, self.ba = ab, ba

    def forward(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        return (self.ab if direction == "AtoB" else self.ba)(x)
