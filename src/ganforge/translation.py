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

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import DataSpec
from .data.images import set_channels, square
from .errors import GanforgeError
from .recipes.base import Recipe

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


# ------------------------------------------------------------------ files


def inputs_of(path: Path) -> tuple[str, list[str]]:
    """What ``--input`` is: ("image", [file]) | ("folder", [relative files]) | ("npy", [file])."""
    from .data.folder import find_images

    if not path.exists():
        raise GanforgeError(f"--input {str(path)!r} does not exist")
    if path.is_dir():
        found = find_images(path)
        if not found:
            raise GanforgeError(f"--input {str(path)!r} holds no image (png, jpg, jpeg, webp, bmp, gif, tif)")
        return "folder", [str(p.relative_to(path)) for p in found]
    if path.suffix.lower() == ".npy":
        return "npy", [path.name]
    return "image", [path.name]


def iter_inputs(path: Path, kind: str, names: list[str]) -> Iterator[tuple[str, torch.Tensor | None]]:
    """(name, image [C, H, W] or None when unreadable) for each input."""
    if kind == "npy":
        from .evaluation import read_array

        a = torch.from_numpy(read_array(path, "--input").astype(np.float32, copy=False))
        if a.dim() == 3:
            a = a[:, None]
        if a.dim() != 4 or a.shape[1] not in (1, 2, 3, 4):
            raise GanforgeError(f"--input {str(path)!r} has shape {list(a.shape)}; expected images [N, C, H, W] "
                                "(or [N, H, W]) with values in [0, 1]")
        for i, img in enumerate(a):
            yield f"{i:05d}", img
        return
    from .data.translation import read_image
    from .errors import DataError

    for name in names:
        try:
            yield name, read_image(path / name if kind == "folder" else path)
        except DataError:
            yield name, None


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

        from .data.folder import to_array

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


IMAGE_OUT = (".png",)


def translate_files(translator, source: Path, target: Path, direction: str = "AtoB", fit: str | None = None,
                    progress: bool = True) -> tuple[Path, int, list[str]]:
    """``ganforge translate``: an image, a folder or an .npy in; a PNG, a folder of PNGs (mirroring
    the input's names) or a float32 .npy out. Returns (what was written, images written, skipped names).

    Unreadable files of a folder are skipped and listed; the rest are translated.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .console import err
    from .provenance import info_of, save_png

    source, target = Path(source).expanduser(), Path(target).expanduser()
    kind, names = inputs_of(source)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".npy", ""):
        raise GanforgeError(f"--out {str(target)!r}: expected FILE.png, FILE.npy or a directory")
    if target.resolve() == source.resolve():
        raise GanforgeError(f"--out {str(target)!r} would overwrite the input; choose another path")
    translator.recipe.check_direction(direction)
    fit = fit or default_fit(translator.spec)
    results: list[tuple[str, torch.Tensor]] = []
    skipped: list[str] = []
    columns = (TextColumn("[bold]translate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=not progress, transient=True) as bar:
        task = bar.add_task("translate", total=len(names) if kind != "image" else None)
        for name, img in iter_inputs(source, kind, names):
            if img is None:
                skipped.append(name)
                continue
            if kind == "image" and fit == "tile":  # one big image: the bar counts its tiles
                bar.update(task, total=tile_count(img.shape[-2], img.shape[-1], translator.spec.shape[-1]))
                out = translate_images(translator.recipe, translator.net, translator.spec, [img], direction, fit,
                                       on_tiles=lambda k: bar.advance(task, k))[0]
            else:
                out = translate_images(translator.recipe, translator.net, translator.spec, [img], direction, fit)[0]
                bar.advance(task)
            results.append((name, out))
    if not results:
        raise GanforgeError(f"no readable image in --input {str(source)!r} ({len(skipped)} unreadable: "
                            f"{', '.join(skipped[:5])})")
    if suffix in (".npy", ".png") and len({tuple(r.shape) for _, r in results}) > 1:
        raise GanforgeError(f"the {len(results)} translations differ in size (tiled at their own scale); write "
                            "them to a directory, or use --fit resize")
    if suffix == ".npy":
        from .sampling import save_npy

        save_npy(target, torch.stack([r for _, r in results]).numpy().astype(np.float32))
    elif suffix == ".png" and len(results) > 1:
        from .train.visuals import save_image_grid

        save_image_grid(torch.stack([r for _, r in results]), target, info=info_of(translator, direction=direction))
    else:
        for name, r in results:
            path = target if suffix == ".png" else target / Path(name).with_suffix(".png")
            save_png(r, path, info_of(translator, direction=direction, source=name))
    return target, len(results), skipped
