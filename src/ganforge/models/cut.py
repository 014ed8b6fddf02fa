"""Contrastive Unpaired Translation's pieces (Park et al. 2020): patch features from the generator's own
encoder, a small projection head per layer, and the PatchNCE loss.

A translated image's patch should be more like the *same place* in its input than like any other place
of that input, in the generator's own encoder features: each query patch of G(x) has one positive (the
patch of x at the same position) and P - 1 negatives (the other sampled patches of x), scored by cosine
similarity over a temperature, with cross-entropy towards the positive (InfoNCE). The keys are
detached, as in the reference implementation.

* :func:`encoder_layers` - the layers of a :class:`~ganforge.models.translation.ResnetGenerator` whose
  outputs are compared: the padded pixels, each downsampling convolution, and the residual blocks a
  quarter and three quarters of the way through - what the reference's ``0,4,8,12,16`` pick in its
  antialiased 9-block generator, here ``0,4,7,12,16``, sized to any shape.
* :class:`PatchSampler` - the reference's PatchSampleF: the same random positions for queries and
  keys, then Linear-ReLU-Linear (256 units) and L2 normalisation.
* :func:`patch_nce` - the loss over one layer's projected patches.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError

Tensor = torch.Tensor
MASKED = -10.0  # the reference's logit for a query against its own positive among the negatives


def encoder_layers(down: int, blocks: int, spec: str = "auto") -> list[int]:
    """Indices into a ResnetGenerator's ``net`` whose outputs PatchNCE compares (``"auto"`` or ``"0,4,8"``)."""
    first_block = 4 + 3 * down  # stem (pad, conv, norm, relu), then conv-norm-relu per downsampling
    last = first_block + blocks - 1
    if spec == "auto":
        picked = [0, *(4 + 3 * i for i in range(down)), first_block + blocks // 4, first_block + 3 * blocks // 4]
        return sorted({i for i in picked if i <= last})
    try:
        picked = sorted({int(s) for s in spec.split(",")})
    except ValueError:
        picked = []
    if not picked or picked[0] < 0 or picked[-1] > last:
        raise ConfigError(f"cut.layers={spec!r} is not allowed; expected 'auto' or comma-separated layer indices "
                          f"from 0 to {last} (the encoder and residual blocks of this generator)")
    return picked


def encode(G: nn.Module, x: Tensor, layers: list[int]) -> list[Tensor]:
    """The outputs of ``G.net``'s ``layers`` for input ``x`` (runs only as far as the deepest one)."""
    feats = []
    for i, layer in enumerate(G.net):
        x = layer(x)
        if i in layers:
            feats.append(x)
            if len(feats) == len(layers):
                break
    return feats


def patch_ids(feats: list[Tensor], patches: int, gen: torch.Generator) -> list[Tensor]:
    """Per layer, up to ``patches`` distinct random positions (shared by the whole batch)."""
    return [torch.randperm(f.shape[2] * f.shape[3], generator=gen, device=gen.device)[:patches].to(f.device)
            for f in feats]


class PatchSampler(nn.Module):
    """One projection head per compared layer: features at the given positions -> unit vectors ``[N * P, dim]``."""

    def __init__(self, channels: list[int], dim: int = 256) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(c, dim), nn.ReLU(), nn.Linear(dim, dim)) for c in channels)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    @classmethod
    def for_generator(cls, G: nn.Module, in_channels: int, layers: list[int], dim: int = 256) -> PatchSampler:
        """Heads sized to the channels of ``G``'s ``layers`` (a ResnetGenerator taking ``in_channels``)."""
        side = 4 * G.multiple
        return cls([f.shape[1] for f in encode(G, torch.zeros(1, in_channels, side, side), layers)], dim)

    def forward(self, feats: list[Tensor], ids: list[Tensor]) -> list[Tensor]:
        out = []
        for f, idx, head in zip(feats, ids, self.heads):
            picked = f.flatten(2).transpose(1, 2)[:, idx].flatten(0, 1)  # [N * P, C]
            out.append(F.normalize(head(picked), dim=1, eps=1e-7))
        return out


def patch_nce(q: Tensor, k: Tensor, batch: int, tau: float = 0.07) -> Tensor:
    """PatchNCE over one layer: ``q`` (queries, from the translation) and ``k`` (keys, from its input), both
    ``[batch * P, D]`` unit vectors; negatives are the other patches of the same image."""
    q, k = q.view(batch, -1, q.shape[1]), k.detach().view(batch, -1, k.shape[1])
    positive = (q * k).sum(2, keepdim=True)  # [N, P, 1]
    negative = q @ k.transpose(1, 2)  # [N, P, P]
    eye = torch.eye(q.shape[1], dtype=torch.bool, device=q.device)
    logits = torch.cat([positive, negative.masked_fill(eye, MASKED)], 2).flatten(0, 1) / tau
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=q.device))


def nce_between(G: nn.Module, head: PatchSampler, src: Tensor, out: Tensor, layers: list[int], patches: int,
                tau: float, gen: torch.Generator, flipped: bool = False) -> Tensor:
    """PatchNCE between a source batch ``src`` and its translation ``out`` (in the source's channels), averaged
    over ``layers`` of generator ``G``'s encoder; ``flipped``: ``out`` was made from the mirrored source."""
    queries = encode(G, out, layers)
    if flipped:
        queries = [f.flip(-1) for f in queries]
    with torch.no_grad():  # the keys are detached: neither G nor the head learns through them
        keys = encode(G, src, layers)
        ids = patch_ids(keys, patches, gen)
        keys = head(keys, ids)
    qs = head(queries, ids)
    return sum(patch_nce(q, k, len(src), tau) for q, k in zip(qs, keys)) / len(qs)
