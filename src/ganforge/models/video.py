"""Video GAN networks: a generator that keeps a clip's content and moves it, and two discriminators.

The latent of a clip is ``[content z_c | motion z_m]``. Motion is time-continuous (StyleGAN-V, Skorokhodov
et al. 2022): z_m sets per-clip frequencies and phases, and frame ``t`` sees periodic waves of
``omega * t + phi`` (sine and cosine as in StyleGAN-V, and triangle waves beside them), so a clip can be
drawn at any times, longer than trained. A bounce between two walls at constant speed is a triangle wave
of time, which these features hold exactly.

Two frame generators (``video.generator``):

* ``layered`` (LR-GAN, Yang et al. 2017; the layered VGAN idea, Vondrick et al. 2016): z_c draws one
  foreground with its mask and one background per clip; every frame places the foreground by a shift (or,
  with ``affine``, a shift, scale and rotation) that a small network reads from the motion features alone (so
  a clip's path is its motion code's; with ``bounce``, :class:`Walls` instead: one triangle wave per axis, a
  constant speed between two walls). The content cannot change between frames
  by construction, and G runs its convolutions once per clip rather than once per frame. The foreground is
  a whole layer over a drawn background, or (``sprite``, LR-GAN's smaller foreground) a sprite of its own
  smaller size, centred and then moved, over a background of one colour per clip.
* ``frames`` (MoCoGAN, Tulyakov et al. 2018): a DCGAN generator draws every frame from ``[z_c, m(t)]``;
  nothing but the video discriminator keeps the content.

Discriminators: :class:`FrameDiscriminator` judges single frames (a few per clip), :class:`ClipDiscriminator`
a whole clip with 3D convolutions (MoCoGAN's D_V). On labelled clips (``num_classes``, with
``video.conditional``) the content network and the frame judge read the class as cGAN does (Mirza & Osindero
2014: an embedding beside z, label maps beside the frame), so a clip of a chosen digit can be asked for.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dcgan import DCGANDiscriminator, DCGANGenerator

BACKGROUND_GAIN = 20.0  # a flat background's colour is a few numbers that must travel far (to the data's black,
#                        say): read with this gain, they move this many times faster than Adam's step alone moves them


def triangle(angle: torch.Tensor) -> torch.Tensor:
    """The triangle wave of period 2 pi in [-1, 1], in phase with sin: what a bounce between two walls traces."""
    return 2 / math.pi * torch.asin(torch.sin(angle).clamp(-1, 1))


def label_dim(num_classes: int) -> int:
    """The width of a class embedding (as the conditional DCGANs size theirs)."""
    return min(max(num_classes, 8), 64)


class Motion(nn.Module):
    """z_m [N, M] -> per-frame motion features [N, T, 4K] at frame times ``t`` [T] (any reals): for each of K
    frequencies and phases the clip's z_m sets, the sine, cosine and two triangle waves (in phase with each)."""

    def __init__(self, motion_dim: int, channels: int, hidden: int = 64, max_freq: float = 1.0) -> None:
        super().__init__()
        self.max_freq = max_freq
        self.net = nn.Sequential(nn.Linear(motion_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 2 * channels))

    def forward(self, z_m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        freq, phase = self.net(z_m).chunk(2, 1)  # [N, K] each
        angle = self.max_freq * torch.sigmoid(freq)[:, None] * t[None, :, None] + math.pi * phase[:, None]
        return torch.cat([angle.sin(), angle.cos(), triangle(angle), triangle(angle + math.pi / 2)], 2)


class Walls(nn.Module):
    """A bounce between two walls on each axis at a constant speed (``video.path bounce``): the shift along x and y
    is ``centre + half_range * triangle(omega t + phi)``, the clip's own frequency and phase per axis (from z_m,
    :class:`Motion` with two channels) and walls shared by every clip (learnt; they start where a ``side`` px
    foreground touches the edges of an ``h`` px frame)."""

    def __init__(self, h: int, side: int) -> None:
        super().__init__()
        self.centre = nn.Parameter(torch.zeros(2))
        self.half_range = nn.Parameter(torch.full((2,), (h - side) / h if side < h else 0.25))

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        """Motion features [N, T, 8] of two channels -> shifts [N, T, 2]."""
        _, _, tri, _ = m.chunk(4, -1)  # Motion's sin, cos, triangle, shifted triangle: the triangles in phase with sin
        return self.centre + self.half_range * tri


class VideoGenerator(nn.Module):
    """``[z_c | z_m]`` [N, Z + M] -> clips [N, T, C, H, W] in [-1, 1], T = ``frames`` unless ``t`` is given."""

    def __init__(self, z_dim: int, motion_dim: int, frames: int, resolution: int, channels: int, width: int,
                 max_channels: int, layered: bool = True, motion_channels: int = 8, upsample: str = "transpose",
                 affine: bool = False, num_classes: int = 0, sprite: int = 0, whole_pixels: bool = False,
                 bounce: bool = False) -> None:
        super().__init__()
        self.z_dim, self.motion_dim, self.frames, self.layered = z_dim, motion_dim, frames, layered
        self.whole_pixels = whole_pixels and layered
        self.channels, self.resolution = channels, resolution
        self.sprite = sprite if layered and 0 < sprite < resolution else 0  # 0: the foreground is a whole layer
        bounce = bounce and layered and not affine
        self.motion = Motion(motion_dim, 2 if bounce else motion_channels)
        self.embed = nn.Embedding(num_classes, label_dim(num_classes)) if num_classes else None  # cGAN's concat
        c_in = z_dim + (label_dim(num_classes) if num_classes else 0)  # what the content network reads
        m = 4 * motion_channels
        if layered:  # foreground (C), its mask (1) and a background (C), once per clip
            if self.sprite:  # the foreground at its own size; the background one colour (from z_c)
                self.content = DCGANGenerator(c_in, self.sprite, channels + 1, width, max_channels, upsample)
                self.background = nn.Linear(c_in, channels)  # read with a gain (forward)
                with torch.no_grad():
                    self.background.weight /= BACKGROUND_GAIN  # the same start, BACKGROUND_GAIN x faster
                    self.background.bias.zero_()
                    self.content.net[-2].bias[channels] = -2.0  # the sprite starts faint, not an opaque square
            else:  # each a whole layer
                self.content = DCGANGenerator(c_in, resolution, 2 * channels + 1, width, max_channels, upsample)
            self.content.net[-1] = nn.Identity()  # heads apply their own ranges
            self.place = Walls(resolution, self.sprite or resolution) if bounce else self.placement(m, affine)
        else:
            self.content = DCGANGenerator(c_in + m, resolution, channels, width, max_channels, upsample)

    @staticmethod
    def placement(features: int, affine: bool) -> nn.Module:
        """``video.path waves``: a small network that reads a frame's shift (and with ``affine`` its scale and
        rotation) from its motion features; it starts moving by a few pixels, at the foreground's size and angle."""
        place = nn.Sequential(nn.Linear(features, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2),
                              nn.Linear(64, 4 if affine else 2))
        nn.init.normal_(place[-1].weight, std=0.3)
        with torch.no_grad():
            place[-1].weight[2:] = 0
        nn.init.zeros_(place[-1].bias)
        return place

    def motion_parameters(self) -> list[nn.Parameter]:
        """The parameters that decide where things are in each frame (the motion code's network, the placement)."""
        return [*self.motion.parameters(), *(self.place.parameters() if self.layered else ())]

    def times(self, frames: int | None, device: torch.device) -> torch.Tensor:
        return torch.arange(frames or self.frames, device=device, dtype=torch.float32)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                t: torch.Tensor | None = None) -> torch.Tensor:
        t = self.times(None, z.device) if t is None else t.to(z.device, torch.float32)
        z_c, z_m = z[:, : self.z_dim], z[:, self.z_dim :]
        if self.embed is not None:
            z_c = torch.cat([z_c, self.embed(labels)], 1)
        m = self.motion(z_m, t)  # [N, T, 4K]
        frames = len(t)  # (batch sizes stay symbolic: the exported sampler takes any N)
        if not self.layered:
            x = self.content(torch.cat([z_c[:, None].expand(-1, frames, -1), m], 2).flatten(0, 1))
            return x.view(-1, frames, *x.shape[1:])
        c, h = self.channels, self.resolution
        layers = self.content(z_c)  # [N, C + 1 (+ C), S, S]
        fg, mask = torch.tanh(layers[:, :c]), torch.sigmoid(layers[:, c : c + 1])
        if self.sprite:
            bg = torch.tanh(BACKGROUND_GAIN * self.background(z_c))[:, :, None, None].expand(-1, -1, h, h)
        else:
            bg = torch.tanh(layers[:, c + 1 :])
        move = self.place(m).flatten(0, 1)  # [N*T, 2 or 4]: where the foreground is, from the motion alone
        sprite = torch.cat([fg, mask], 1).repeat_interleave(frames, 0)  # [N*T, C + 1, S, S]
        placed = self.paste(sprite, move, h)  # [N*T, C + 1, H, H]
        fg_t, mask_t = placed[:, :c], placed[:, c:]
        x = mask_t * fg_t + (1 - mask_t) * bg.repeat_interleave(frames, 0)
        return x.view(-1, frames, c, h, h)

    def paste(self, sprite: torch.Tensor, move: torch.Tensor, h: int) -> torch.Tensor:
        """The foreground [B, C + 1, S, S] moved by ``move`` [B, 2 or 4] onto an ``h`` px frame. With
        ``whole_pixels`` the picture is the foreground at the shift rounded to whole pixels (as real sprites are
        pasted: never blurred), and the shift learns from the bilinear picture at the unrounded shift (a
        straight-through estimator, Bengio et al. 2013, taken on the picture: the gradient of bilinear sampling
        at a whole pixel is one-sided and drove every sprite off the canvas within 300 steps)."""
        side = sprite.shape[-1]
        size = side / h  # 1 for a whole layer

        def sample(image: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
            return F.grid_sample(image, placement_grid(at, h, h, size), mode="bilinear", padding_mode="zeros",
                                 align_corners=False)

        if not self.whole_pixels:
            return sample(sprite, move)
        pasted = sample(sprite, snap_to_pixels(move.detach(), h, side))
        if not (torch.is_grad_enabled() and move.requires_grad):  # drawing: the pasted picture is all there is
            return pasted
        soft = sample(sprite.detach(), move)  # carries the path's gradient only
        return pasted + soft - soft.detach()


def snap_to_pixels(move: torch.Tensor, h: int, side: int) -> torch.Tensor:
    """``move`` with its shift rounded so that a ``side`` px foreground lands on whole pixels of an ``h`` px frame.
    Shifts are in [-1, 1] units (a pixel is 2 / h); a centred foreground sits (h - side) / 2 px in."""
    frac = (h - side) / 2 % 1  # a whole-pixel position's fraction of a pixel
    snapped = (torch.round(move[:, :2] * h / 2 - frac) + frac) * 2 / h
    return torch.cat([snapped, move[:, 2:]], 1)


def placement_grid(move: torch.Tensor, h: int, w: int, size: float = 1.0) -> torch.Tensor:
    """``grid_sample``'s grid [B, H, W, 2] that moves an image by ``move`` [B, 2] (shift x, y in [-1, 1] units) or
    [B, 4] (then also log-scale and rotation), written out rather than with ``affine_grid`` so that ONNX
    (opset < 20) exports it. ``size``: the image's side as a share of the output's (a sprite smaller than the
    canvas, centred before it moves)."""
    ys = ((torch.arange(h, device=move.device, dtype=move.dtype) * 2 + 1) / h - 1) / size
    xs = ((torch.arange(w, device=move.device, dtype=move.dtype) * 2 + 1) / w - 1) / size
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).view(1, h * w, 2)  # (x, y) of each output pixel
    if move.shape[1] == 4:  # sample the source at R(-turn) / scale (p - shift)
        inv, turn = torch.exp(-move[:, 2]), move[:, 3]
        cos, sin = turn.cos() * inv, turn.sin() * inv
        rot = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # [B, 2, 2]
        local = base - move[:, None, :2] / size
        return (local @ rot).view(-1, h, w, 2)
    return (base - move[:, None, :2] / size).view(-1, h, w, 2)


class FrameDiscriminator(nn.Module):
    """Clips [N, T, C, H, W] -> logits [N, F] of ``per_clip`` evenly spaced frames, judged one by one."""

    def __init__(self, resolution: int, channels: int, width: int, max_channels: int, per_clip: int,
                 mbstd: int = 0, num_classes: int = 0) -> None:
        super().__init__()
        self.per_clip = per_clip
        self.embed = nn.Embedding(num_classes, label_dim(num_classes)) if num_classes else None  # label maps in
        extra = label_dim(num_classes) if num_classes else 0
        self.net = DCGANDiscriminator(resolution, channels + extra, width, max_channels, mbstd)

    def forward(self, clips: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        n, frames = clips.shape[:2]
        pick = torch.linspace(0, frames - 1, min(self.per_clip, frames), device=clips.device).round().long()
        # time-major: a minibatch-stddev group holds frames of different clips, not one clip's frames
        x = clips[:, pick].transpose(0, 1).flatten(0, 1)  # [F*N, C, H, W]
        if self.embed is not None:
            e = self.embed(labels).repeat(len(pick), 1)  # the same order: frame-major
            x = torch.cat([x, e[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.net(x).view(len(pick), n).t()


class ClipDiscriminator(nn.Module):
    """Clips [N, T, C, H, W] -> logits [N]: 3D convolutions over time and space (MoCoGAN's video D)."""

    def __init__(self, frames: int, resolution: int, channels: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        a, t, r = channels, frames, resolution
        for i in range(3):
            b = width * 2**i
            kt, st = (4, 2) if t >= 4 else (1, 1)
            layers += [nn.Conv3d(a, b, (kt, 4, 4), (st, 2, 2), (kt // 2 - 1 if kt == 4 else 0, 1, 1)),
                       nn.LeakyReLU(0.2, True)]
            a, t, r = b, t // st, r // 2
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(a * t * r * r, 1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(clips.transpose(1, 2)).flatten(1)).flatten()


class VideoDiscriminator(nn.Module):
    """Both judges in one module (one optimizer): ``frames`` (single frames) and ``clips`` (whole clips)."""

    def __init__(self, frames: int, resolution: int, channels: int, width: int, max_channels: int,
                 per_clip: int, mbstd: int = 0, num_classes: int = 0) -> None:
        super().__init__()
        self.frames = FrameDiscriminator(resolution, channels, width, max_channels, per_clip, mbstd, num_classes)
        self.clips = ClipDiscriminator(frames, resolution, channels, width)

    def forward(self, clips: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (frame logits [N, F], clip logits [N]); a class-conditional frame judge reads the clips' labels."""
        return self.frames(clips, labels), self.clips(clips)
