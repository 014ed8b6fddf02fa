"""Text-to-image networks: a sentence encoder, an image encoder aligned with it, and a GAN conditioned on text.

- :class:`TextEncoder`: word embeddings and a bidirectional GRU over the caption; its two final
  states, projected, are the sentence embedding.
- :class:`ImageEncoder`: a small CNN into the same space. The two are trained CLIP-style
  (Radford et al. 2021): matching image-caption pairs close, the batch's other pairs apart.
  The image encoder is also the feature space of R-precision and fd (metrics/text2image.py).
- :class:`TextToImageGenerator`: GAN-INT-CLS / StackGAN conditioning (Reed et al. 2016; Zhang
  et al. 2017): the sentence embedding goes through conditioning augmentation (a Gaussian whose
  mean and variance it sets, with a KL pull to N(0, I)); the code is concatenated to z and drives
  every batch norm's gain and bias (as class-conditional BN does for labels) in a DCGAN body.
  It holds the encoders, so a trained generator turns a prompt into pictures on its own.
- :class:`TextDiscriminator`: a DCGAN body whose logit adds a projection of the sentence
  embedding onto its features (Miyato & Koyama 2018), so it can tell a real picture with the
  wrong caption from one with the right caption (the matching-aware D of GAN-CLS).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conditional import head_features
from .dcgan import DCGANDiscriminator, DCGANGenerator

Tensor = torch.Tensor


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, dim)

    def forward(self, tokens: Tensor) -> Tensor:  # [N, L] int64 (0 = padding) -> [N, dim], unit length
        lengths = (tokens > 0).sum(1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.gru(packed)  # [2, N, hidden]: the last state of each direction
        return F.normalize(self.out(torch.cat([h[0], h[1]], 1)), dim=1)


class ImageEncoder(nn.Module):
    """Stride-2 convolutions down to 4x4, then a linear map; model-space images in, unit vectors out."""

    def __init__(self, resolution: int, channels: int, dim: int, width: int = 32) -> None:
        super().__init__()
        layers, c, r = [], channels, resolution
        while r > 4:
            layers += [nn.Conv2d(c, width, 3, 2, 1), nn.GroupNorm(8, width), nn.SiLU()]
            c, r, width = width, r // 2, min(width * 2, 256)
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.out = nn.Linear(c * 16, dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.out(self.features(x)), dim=1)


class TextBatchNorm(nn.Module):
    """Batch norm without its own affine; gain and bias are linear in the text code."""

    def __init__(self, bn: nn.BatchNorm2d, code_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(bn.num_features, affine=False)
        self.affine = nn.Linear(code_dim, 2 * bn.num_features)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)
        self.code: Tensor | None = None  # set by TextToImageGenerator before each forward

    def forward(self, x: Tensor) -> Tensor:
        gain, bias = self.affine(self.code).chunk(2, 1)
        return self.bn(x) * (1 + gain[:, :, None, None]) + bias[:, :, None, None]


class TextToImageGenerator(nn.Module):
    def __init__(self, vocab_size: int, resolution: int, channels: int, z_dim: int, embed_dim: int, code_dim: int,
                 width: int, max_channels: int, upsample: str = "transpose") -> None:
        super().__init__()
        self.z_dim, self.code_dim = z_dim, code_dim
        self.text = TextEncoder(vocab_size, embed_dim)
        self.image = ImageEncoder(resolution, channels, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's learnt temperature
        self.augment = nn.Linear(embed_dim, 2 * code_dim)  # conditioning augmentation: mean and log-variance
        self.body = DCGANGenerator(z_dim + code_dim, resolution, channels, width, max_channels, upsample)
        self.norms: list[TextBatchNorm] = []
        for i, layer in enumerate(self.body.net):
            if isinstance(layer, nn.BatchNorm2d):
                self.body.net[i] = TextBatchNorm(layer, code_dim)
                self.norms.append(self.body.net[i])

    def encoder_parameters(self) -> list[nn.Parameter]:
        """What the alignment stage trains: both encoders and the temperature."""
        return [*self.text.parameters(), *self.image.parameters(), self.logit_scale]

    def generator_parameters(self) -> list[nn.Parameter]:
        """What the adversarial stage trains: conditioning augmentation and the image body."""
        return [*self.augment.parameters(), *self.body.parameters()]

    def code(self, embedding: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The conditioning code: ``mu + sigma * noise`` (``mu`` without noise), with ``mu`` and ``log sigma^2``."""
        mu, logvar = self.augment(embedding).chunk(2, 1)
        c = mu if noise is None else mu + torch.exp(0.5 * logvar) * noise
        return c, mu, logvar

    def synthesize(self, z: Tensor, code: Tensor) -> Tensor:
        for norm in self.norms:
            norm.code = code
        return self.body(torch.cat([z, code], 1))

    def forward(self, z: Tensor, tokens: Tensor) -> Tensor:
        """Pictures of captions ``tokens`` ``[N, L]`` from latents ``z`` ``[N, z_dim]`` (the code's mean)."""
        return self.synthesize(z, self.code(self.text(tokens))[0])


class TextDiscriminator(nn.Module):
    def __init__(self, resolution: int, channels: int, embed_dim: int, width: int, max_channels: int,
                 mbstd: int = 0) -> None:
        super().__init__()
        body = DCGANDiscriminator(resolution, channels, width, max_channels, mbstd)
        self.features, self.head = body.net[:-1], body.net[-1]
        self.project = nn.Linear(embed_dim, head_features(body))
        nn.init.normal_(self.project.weight, 0, 0.02)

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:  # -> [N] logits
        phi = self.features(x)
        return self.head(phi).flatten() + (self.project(embedding) * phi.flatten(1)).sum(1)


def contrastive_loss(image: Tensor, text: Tensor, logit_scale: Tensor, hard: Tensor | None = None,
                     usable: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """CLIP's symmetric InfoNCE over a batch of unit vectors ``[N, D]`` (row i of each is a pair); and the
    share of images whose own caption scores highest. ``hard`` ``[H, N, D]``: more captions for image i only
    (hard negatives, e.g. its own caption with a word swapped), among which it must also pick its own;
    ``usable`` ``[H, N]`` bool: which of them count (default all)."""
    scale = logit_scale.clamp(max=math.log(100)).exp()
    logits = scale * image @ text.t()
    per_image = logits
    if hard is not None:
        extra = scale * torch.einsum("nd,hnd->nh", image, hard)
        if usable is not None:
            extra = extra.masked_fill(~usable.t(), float("-inf"))
        per_image = torch.cat([logits, extra], 1)
    target = torch.arange(len(image), device=image.device)
    loss = 0.5 * (F.cross_entropy(per_image, target) + F.cross_entropy(logits.t(), target))
    return loss, (per_image.argmax(1) == target).float().mean()
