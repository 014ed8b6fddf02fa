"""Using a trained translation model: any image in, the other domain out.

Inputs of any size and mode are converted to what the model expects: the source domain's channels
(colour to ITU-R 601 grey, grey to RGB; alpha composited on black), values in [0, 1]. Then:

* ``fit="resize"`` - the image is centre-cropped to a square and resized to the trained resolution,
  as the data loaders do, and translated whole (for models trained on whole images: digits2typeset,
  most paired folders). The output is the trained size.
* ``fit="tile"`` - the image is translated at its own scale in overlapping tiles of the trained
  size (a quarter of a tile overlaps), blended with weights that ramp down across each overlap so
  no seam shows; memory is bounded by the tile batch, whatever the image size. Images smaller than
  a tile are reflect-padded. The output has the input's size. The default for models trained on
  patches of larger photos (edges2photos, gray2color).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import DataSpec
from ..data.images import set_channels, square
from ..errors import GanforgeError
from . import Recipe

FITS = ("resize", "tile")
TILE_BATCH = 32


def source_channels(spec: DataSpec, direction: str) -> int:
    return spec.shape[0] if direction == "AtoB" else spec.shape_b[0]


def default_fit(spec: DataSpec) -> str:
    return "tile" if spec.patches else "resize"


@torch.no_grad()
def translate_batch(recipe: Recipe, G: nn.Module, x: torch.Tensor, direction: str,
                    batch_size: int = TILE_BATCH) -> torch.Tensor:
    """Data-space images [N, C, R, R] of the source domain -> [N, C', R, R] in [0, 1]."""
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        y = recipe.translate(G, x[i : i + batch_size].to(device) * 2 - 1, direction)
        out.append(((y.float() + 1) / 2).clamp(0, 1).cpu())
    return torch.cat(out)


def _ramp(n: int, overlap: int) -> torch.Tensor:
    """1 in the middle of a tile, falling linearly to near 0 across ``overlap`` pixels at each side."""
    i = torch.arange(n, dtype=torch.float32)
    if overlap == 0:
        return torch.ones(n)
    return torch.minimum(torch.ones(n), torch.minimum(i + 0.5, n - i - 0.5) / overlap)


def _starts(size: int, tile: int, stride: int) -> list[int]:
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def translate_tiled(recipe: Recipe, G: nn.Module, img: torch.Tensor, direction: str, tile: int,
                    overlap: int | None = None, on_tiles=None) -> torch.Tensor:
    """One data-space image [C, H, W] (source channels) -> [C', H, W], translated in overlapping tiles."""
    overlap = tile // 4 if overlap is None else overlap
    _, h, w = img.shape
    ph, pw = max(0, tile - h), max(0, tile - w)
    x = F.pad(img[None], (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")[0] if ph or pw \
        else img
    H, W = x.shape[1:]
    corners = [(t, left) for t in _starts(H, tile, tile - overlap) for left in _starts(W, tile, tile - overlap)]
    window = _ramp(tile, overlap)[:, None] * _ramp(tile, overlap)[None, :]  # [tile, tile]
    acc, weight = None, torch.zeros(H, W)
    for i in range(0, len(corners), TILE_BATCH):
        part = corners[i : i + TILE_BATCH]
        y = translate_batch(recipe, G, torch.stack([x[:, t : t + tile, le : le + tile] for t, le in part]), direction)
        if acc is None:
            acc = torch.zeros(y.shape[1], H, W)
        for (t, le), yi in zip(part, y):
            acc[:, t : t + tile, le : le + tile] += yi * window
            weight[t : t + tile, le : le + tile] += window
        if on_tiles:
            on_tiles(len(part))
    return (acc / weight)[:, :h, :w].clamp(0, 1)


def tile_count(h: int, w: int, tile: int, overlap: int | None = None) -> int:
    overlap = tile // 4 if overlap is None else overlap
    return len(_starts(max(h, tile), tile, tile - overlap)) * len(_starts(max(w, tile), tile, tile - overlap))


def prepare(img: torch.Tensor, channels: int) -> torch.Tensor:
    """[C, H, W] or [H, W] float in [0, 1] (any channel count 1-4) -> [channels, H, W]."""
    if img.dim() == 2:
        img = img[None]
    if img.dim() != 3 or img.shape[0] not in (1, 2, 3, 4):
        raise GanforgeError(f"an image must be [C, H, W] with 1-4 channels; got shape {list(img.shape)}")
    if img.shape[0] in (2, 4):  # grey+alpha or RGBA: composite on black, as the loaders do
        img = img[:-1] * img[-1:]
    return set_channels(img[None].float().clamp(0, 1), channels)[0]


def translate_images(recipe: Recipe, G: nn.Module, spec: DataSpec, images: list[torch.Tensor], direction: str,
                     fit: str | None = None, on_tiles=None) -> list[torch.Tensor]:
    """Data-space images of any sizes ([C, H, W], any channels) -> translations, one per image."""
    recipe.check_direction(direction)
    fit = fit or default_fit(spec)
    if fit not in FITS:
        raise GanforgeError(f"--fit {fit!r} is not allowed; expected {' or '.join(FITS)}")
    side, channels = spec.shape[-1], source_channels(spec, direction)
    out = []
    for img in images:
        x = prepare(img, channels)
        if fit == "tile":
            out.append(translate_tiled(recipe, G, x, direction, side, on_tiles=on_tiles))
        else:
            out.append(translate_batch(recipe, G, square(x, side)[None], direction)[0])
            if on_tiles:
                on_tiles(1)
    return out


def as_tensor(x) -> torch.Tensor:
    """A tensor [N, C, H, W] of images in [0, 1] from a tensor, PIL image or numpy array."""
    if torch.is_tensor(x):
        t = x.detach().float().cpu()
    elif isinstance(x, np.ndarray):
        a = x.astype(np.float32) / (65535.0 if x.dtype == np.uint16 else 255.0 if x.dtype == np.uint8 else 1.0)
        t = torch.from_numpy(a)
        t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)  # [H, W] or [H, W, C] -> [C, H, W]
    else:
        from PIL import Image

        from ..data.folder import to_array

        if not isinstance(x, Image.Image):
            raise GanforgeError(f"cannot translate a {type(x).__name__}; expected a tensor, a PIL image or an array")

        t = torch.from_numpy(np.ascontiguousarray(to_array(x))).permute(2, 0, 1)
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4:
        raise GanforgeError(f"images must be [C, H, W] or [N, C, H, W]; got shape {list(t.shape)}")
    if not torch.isfinite(t).all():
        raise GanforgeError("the images hold NaN or Inf values")
    return t
