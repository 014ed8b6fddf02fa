"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN") in plain PyTorch.

No compiled extension: modulated convolution is written as scale -> shared convolution -> scale
(the paper's "non-fused" form: the same operator as a grouped convolution with per-sample
weights, and a plain batched convolution that every backend runs fast), and the low-pass
filtered resampling is a depthwise (transposed) convolution with the [1, 3, 3, 1] binomial filter.

Generator: mapping network z (+ label embedding) -> w (8 equalized-LR layers, lr multiplier 0.01),
the running mean of w as a buffer (``w_avg``, truncation is a lerp towards it), a learned 4x4
constant, per resolution two modulated/demodulated 3x3 convolutions with per-pixel noise of learned
strength, and a toRGB (modulated 1x1, no demodulation) whose outputs are summed across resolutions
(the skip generator). ``num_ws = 2 * log2(R) - 2`` style vectors: conv layers and the last toRGB
each read one, so style mixing at a cutoff swaps coarse for fine styles as in the paper.

Discriminator: fromRGB at full resolution, residual blocks (two 3x3 convs, blur-downsample, a 1x1
skip, summed and scaled by 1/sqrt(2)) down to 4x4, minibatch standard deviation, a 3x3 conv and two
fully connected layers; conditional D projects its features onto an embedding of the label.

Every weight is stored N(0, 1) and scaled at run time by ``lr_mul / sqrt(fan_in)`` (equalized learning rate).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn import log2_resolution
from ..nn.anticollapse import MinibatchStd

Tensor = torch.Tensor
SQRT2 = math.sqrt(2)


def lrelu(x: Tensor) -> Tensor:
    """Leaky ReLU(0.2) with StyleGAN's gain sqrt(2), which keeps activations at unit variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


def _binomial() -> Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f[:, None] * f[None, :]
    return f / f.sum()  # [4, 4], sums to 1


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """x2 upsampling with the low-pass filter: zero insertion and a 4x4 blur with gain 4 (one depthwise
    transposed convolution). [N, C, H, W] -> [N, C, 2H, 2W]."""
    c = int(x.shape[1])  # static: lets tracers (ONNX export) see a kernel of known shape
    k = (f * 4).to(x.dtype).expand(c, 1, 4, 4)
    return F.conv_transpose2d(x, k, stride=2, padding=1, groups=c)


def downsample2d(x: Tensor, f: Tensor) -> Tensor:
    """x2 downsampling: 4x4 blur then stride 2 (one depthwise convolution). [N, C, H, W] -> [N, C, H/2, W/2]."""
    c = int(x.shape[1])
    return F.conv2d(x, f.to(x.dtype).expand(c, 1, 4, 4), stride=2, padding=1, groups=c)


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate; ``bias_init`` 1 for style affines."""

    def __init__(self, n_in: int, n_out: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), float(bias_init) / lr_mul))
        self.gain, self.lr_mul, self.activate = lr_mul / math.sqrt(n_in), lr_mul, activate

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.gain, self.bias * self.lr_mul)
        return lrelu(x) if self.activate else x


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate, optional blur-downsampling first, LReLU after."""

    def __init__(self, n_in: int, n_out: int, kernel: int, bias: bool = True, activate: bool = True,
                 down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.gain = 1 / math.sqrt(n_in * kernel * kernel)
        self.activate, self.down, self.pad = activate, down, kernel // 2
        self.register_buffer("filter", _binomial(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.down:
            x = downsample2d(x, self.filter)
        x = F.conv2d(x, self.weight * self.gain, self.bias, padding=self.pad)
        return lrelu(x) if self.activate else x


class MappingNetwork(nn.Module):
    """z [N, z_dim] (+ labels [N]) -> w [N, w_dim]; keeps ``w_avg``, the running mean of w in training."""

    def __init__(self, z_dim: int, w_dim: int, layers: int = 8, num_classes: int = 0, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_classes, self.w_avg_beta = z_dim, w_dim, num_classes, w_avg_beta
        self.embed = EqualLinear(num_classes, w_dim) if num_classes else None
        n_in = z_dim + (w_dim if num_classes else 0)
        self.net = nn.Sequential(*[EqualLinear(n_in if i == 0 else w_dim, w_dim, lr_mul=lr_mul, activate=True)
                                   for i in range(layers)])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, labels: Tensor | None = None, update_avg: bool = False) -> Tensor:
        x = _normalize_2nd_moment(z)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this mapping network is conditional: labels are required")
            c = F.one_hot(labels.long(), self.num_classes).to(z.dtype)
            x = torch.cat([x, _normalize_2nd_moment(self.embed(c))], 1)
        w = self.net(x)
        if update_avg:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(0), 1 - self.w_avg_beta)
        return w


def _normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    return x * (x.square().mean(1, keepdim=True) + eps).rsqrt()


class ModulatedConv(nn.Module):
    """Style-modulated convolution: weights scaled per input channel by an affine map of w, then (with
    ``demodulate``) normalised per output channel to unit expected variance; optional x2 upsampling."""

    def __init__(self, n_in: int, n_out: int, kernel: int, w_dim: int, demodulate: bool = True,
                 up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, n_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(n_out, n_in, kernel, kernel))
        self.gain = 1 / math.sqrt(n_in * kernel * kernel)
        self.demodulate, self.up, self.pad = demodulate, up, kernel // 2
        self.register_buffer("filter", _binomial(), persistent=False)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:  # x [N, I, H, W], w [N, w_dim]
        s = self.affine(w)  # [N, I] styles
        weight = self.weight * self.gain  # [O, I, k, k]
        if self.up:
            x = upsample2d(x, self.filter)
        x = F.conv2d(x * s[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.pad)
        if self.demodulate:  # sigma_j = sqrt(sum_i,k (w_ijk s_i)^2): the std each output would have
            d = (s.float().square() @ weight.float().square().sum((2, 3)).t() + 1e-8).rsqrt()  # [N, O]
            x = x * d[:, :, None, None].to(x.dtype)
        return x


class StyleLayer(nn.Module):
    """Modulated 3x3 conv, per-pixel noise with a learned strength, bias, LReLU."""

    def __init__(self, n_in: int, n_out: int, w_dim: int, resolution: int, up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv(n_in, n_out, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.resolution = resolution
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None) -> Tensor:
        x = self.conv(x, w)
        noise = self.noise_const if noise is None else noise
        x = x + noise.to(x.dtype) * self.noise_strength.to(x.dtype)
        return lrelu(x + self.bias.to(x.dtype)[None, :, None, None])


class ToRGB(nn.Module):
    def __init__(self, n_in: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(n_in, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]


def stylegan_channels(resolution: int, width: int, max_channels: int) -> dict[int, int]:
    """Channels at 4, 8, ..., resolution: ``width`` at full resolution, doubling per halving, capped."""
    return {4 * 2**i: min(width * resolution // (4 * 2**i), max_channels)
            for i in range(log2_resolution(resolution) - 1)}


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, C, R, R] in about [-1, 1]."""

    def __init__(self, resolution: int, channels: int, w_dim: int, width: int, max_channels: int) -> None:
        super().__init__()
        ch = stylegan_channels(resolution, width, max_channels)
        self.resolutions = list(ch)
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        self.layers = nn.ModuleList()
        self.torgb = nn.ModuleList()
        prev = ch[4]
        for r in self.resolutions:
            if r > 4:
                self.layers.append(StyleLayer(prev, ch[r], w_dim, r, up=True))
            self.layers.append(StyleLayer(ch[r] if r > 4 else prev, ch[r], w_dim, r))
            self.torgb.append(ToRGB(ch[r], channels, w_dim))
            prev = ch[r]
        self.num_ws = len(self.layers) + 1
        self.register_buffer("filter", _binomial(), persistent=False)

    def forward(self, ws: Tensor, noise: list[Tensor] | None = None) -> Tensor:
        x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)  # shape[0]: dynamic when traced
        img, i = None, 0
        for b, r in enumerate(self.resolutions):
            for _ in range(1 if r == 4 else 2):
                x = self.layers[i](x, ws[:, i], None if noise is None else noise[i])
                i += 1
            y = self.torgb[b](x, ws[:, i])  # toRGB shares its w with the next block's first conv
            img = y if img is None else upsample2d(img, self.filter) + y
        return img

    def noise_shapes(self, n: int) -> list[tuple[int, ...]]:
        return [(n, 1, layer.resolution, layer.resolution) for layer in self.layers]


class StyleGAN2Generator(nn.Module):
    """z [N, z_dim] (labels [N] when conditional) -> images [N, C, R, R].

    ``forward(z, labels, truncation=psi)``: truncation lerps w towards ``w_avg`` (psi 1: none,
    0: the average image). ``mapping`` and ``synthesis`` can be called apart for style mixing
    and latent walks in w.
    """

    def __init__(self, z_dim: int, resolution: int, channels: int, width: int = 32, max_channels: int = 256,
                 w_dim: int = 256, map_layers: int = 8, num_classes: int = 0, lr_mul: float = 0.01) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.mapping = MappingNetwork(z_dim, w_dim, map_layers, num_classes, lr_mul)
        self.synthesis = SynthesisNetwork(resolution, channels, w_dim, width, max_channels)
        self.num_ws = self.synthesis.num_ws
        self.register_buffer("pl_mean", torch.zeros(()))  # path-length regularizer's running mean

    def w(self, z: Tensor, labels: Tensor | None = None, truncation: float | None = None) -> Tensor:
        """[N, w_dim] intermediate latents, truncated towards ``w_avg`` when ``truncation`` is given."""
        w = self.mapping(z, labels)
        if truncation is not None and truncation != 1:
            w = self.mapping.w_avg.to(w.dtype).lerp(w, truncation)
        return w

    def broadcast(self, w: Tensor) -> Tensor:
        """[N, w_dim] -> [N, num_ws, w_dim], one style vector per layer."""
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def forward(self, z: Tensor, labels: Tensor | None = None, truncation: float | None = None) -> Tensor:
        return self.synthesis(self.broadcast(self.w(z, labels, truncation)))


class DiscriminatorBlock(nn.Module):
    """Residual: conv 3x3, blur-down conv 3x3; skip = blur-down 1x1 conv (no bias); sum / sqrt(2)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(n_in, n_in, 3)
        self.conv1 = EqualConv2d(n_in, n_out, 3, down=True)
        self.skip = EqualConv2d(n_in, n_out, 1, bias=False, activate=False, down=True)

    def forward(self, x: Tensor) -> Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) / SQRT2


class StyleGAN2Discriminator(nn.Module):
    """Residual D: images [N, C, R, R] (labels [N] when conditional) -> logits [N].

    Conditional D (the StyleGAN2-ADA form): the label is mapped to an embedding and the logit is
    the projection of D's last features onto it, scaled by 1/sqrt(dim).
    """

    def __init__(self, resolution: int, channels: int, width: int = 32, max_channels: int = 256,
                 mbstd: int = 4, num_classes: int = 0) -> None:
        super().__init__()
        ch = stylegan_channels(resolution, width, max_channels)
        self.num_classes = num_classes
        self.fromrgb = EqualConv2d(channels, ch[resolution], 1)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(ch[r], ch[r // 2]) for r in sorted(ch, reverse=True)
                                      if r > 4])
        c4 = ch[4]
        self.mbstd = MinibatchStd(mbstd) if mbstd else None
        self.conv = EqualConv2d(c4 + (1 if mbstd else 0), c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, activate=True)
        self.cmap_dim = c4
        self.out = EqualLinear(c4, c4 if num_classes else 1)
        self.embed = EqualLinear(num_classes, c4) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.blocks(self.fromrgb(x))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.embed is None:
            return x.flatten()
        if labels is None:
            raise ValueError("this discriminator is conditional: labels are required")
        cmap = _normalize_2nd_moment(self.embed(F.one_hot(labels.long(), self.num_classes).to(x.dtype)))
        return (x * cmap).sum(1) / math.sqrt(self.cmap_dim)
