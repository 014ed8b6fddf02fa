"""``folder:PATH``: any folder of images, loaded once into one in-memory tensor.

Layout and choices:

* Files are found recursively; extensions ``.png .jpg .jpeg .webp .bmp .gif .tif .tiff`` in
  any case. Hidden files and folders (name starting with ``.``, e.g. macOS ``._x.png``) are ignored.
* Limits (environment variables, read at each load): ``GANFORGE_MAX_IMAGE_PIXELS`` (default
  64 Mpx: an image declaring more pixels in its header is skipped before it is decoded, so a
  decompression bomb costs nothing) and ``GANFORGE_MAX_FILES`` (default 1,000,000: a larger
  folder is refused before anything is decoded).
* Animated images (GIF, APNG, WebP) contribute their first frame.
* Labels: when *every* readable image sits inside a first-level subfolder, that subfolder
  is its class (deeper folders count towards their first-level one; ``class_names`` are
  the sorted subfolder names). If any image lies directly in the root, the whole set is
  unlabelled: a partial labelling would be silently wrong for conditional models.
* Alpha (RGBA, LA, palette with transparency) is composited on black, i.e. colour is
  multiplied by alpha: fully transparent pixels become 0 whatever colour they hide.
* 16-bit grey (``I;16``, ``I``) is scaled by 65535, 8-bit modes by 255.
* Each image is center-cropped to a square (big ones first box-shrunk by an integer factor
  to under 4x the resolution), then resized with :func:`images.resize`
  (bilinear, antialiased when shrinking), the same resize every built-in set uses.
* Channels: ``req.channels`` if given, else 3 if any image has colour content, else 1.
* Splits: a user folder has no held-out part, so ``train`` and ``all`` are every image;
  ``test`` is the fixed stratified 20 % of :func:`images.take_split` (a subset of ``train``).
* Unreadable files (zero-byte, truncated, corrupt, not an image despite the extension, over
  the pixel limit) are skipped and listed in one warning line; a folder with fewer than
  ``MIN_IMAGES`` readable images is refused.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .. import console
from ..errors import DataError
from .base import DATASETS, DataRequest, Dataset
from .images import check_resolution, resize, set_channels, take_split

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
WARN_NAMES = 5  # unreadable files named in the warning; the rest are counted
MIN_IMAGES = 1  # fewer readable images than this is an error
DEFAULT_MAX_PIXELS = 1 << 26  # 64 Mpx, e.g. 8000 x 8000
DEFAULT_MAX_FILES = 1_000_000
MAX_WORKERS = 8  # PIL decoding releases the GIL, so threads scale on many small files
DECODE_BUDGET = 1 << 25  # float32 values decoded per chunk before resizing (128 MiB)


def _limit(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{name}={raw!r} is not allowed; expected an integer >= 1")
    return value


def max_pixels() -> int:
    return _limit("GANFORGE_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS)


def find_images(root: Path) -> list[Path]:
    """Image files under ``root``, recursive, sorted, hidden entries skipped; at most GANFORGE_MAX_FILES."""
    limit = _limit("GANFORGE_MAX_FILES", DEFAULT_MAX_FILES)
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop: followed links are allowed, cycles are not
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath, name))
                if len(found) > limit:
                    raise DataError(f"{root} holds more than {limit} image files; set GANFORGE_MAX_FILES to "
                                    "allow more, or point at a smaller folder")
    return sorted(found)


def to_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> float32 [h, w, 1 or 3] in [0, 1] (alpha composited on black)."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not img.mode.startswith("I;16"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    a = np.asarray(img)
    if img.mode.startswith("I"):  # 16-bit grey ("I;16*", or "I" holding 16-bit PNG data)
        a = np.clip(a.astype(np.float32) / 65535.0, 0, 1)
    elif img.mode == "F":
        a = np.clip(a, 0, 1).astype(np.float32)
    else:
        a = a.astype(np.float32) / 255.0
    a = a.reshape(a.shape[0], a.shape[1], -1)  # [h, w, c]
    if a.shape[2] in (2, 4):  # LA / RGBA: composite on black
        a = a[:, :, :-1] * a[:, :, -1:]
    return a


def center_square(img: Image.Image, multiple: int = 1) -> Image.Image:
    """The centred square crop, its side rounded down to a multiple of ``multiple``."""
    w, h = img.size
    s = min(w, h) // multiple * multiple
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def box_reduce(a: np.ndarray, factor: int) -> np.ndarray:
    """[s, s, c] -> [s/f, s/f, c] by block means: big images shrink cheaply before the resize."""
    if factor == 1:
        return a
    n, c = a.shape[0] // factor, a.shape[2]
    return a.reshape(n, factor, n, factor, c).mean(axis=(1, 3), dtype=np.float32)


def decode(path: Path, resolution: int, pixel_limit: int | None = None) -> tuple[np.ndarray, tuple[int, int]] | None:
    """One file -> (square float32 [s, s, 1 or 3] in [0, 1] with s < 4 * resolution, the file's (w, h));
    None when unreadable.

    The header's declared size is checked against ``pixel_limit`` before any pixel is decoded.
    """
    pixel_limit = pixel_limit or max_pixels()
    try:
        with Image.open(path) as img:
            if img.size[0] * img.size[1] > pixel_limit:
                return None  # a decompression bomb, or simply larger than allowed
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # animated: the first frame
            size = img.size
            img.draft(img.mode, (resolution, resolution))  # JPEG: decode big photos at reduced scale
            img = ImageOps.exif_transpose(img)  # phone photos: apply the stored rotation
            factor = max(1, min(img.size) // (2 * resolution))
            a = box_reduce(to_array(center_square(img, factor)), factor)  # [s, s, c]
    except Exception:  # any decoder failure means "unreadable": truncated, corrupt, bomb, ...
        return None
    if a.shape[0] == 0:
        return None
    if a.shape[2] == 3 and np.array_equal(a[:, :, 0], a[:, :, 1]) and np.array_equal(a[:, :, 1], a[:, :, 2]):
        a = a[:, :, :1]  # grey content stored as RGB counts as grey
    return a, size


def resize_all(arrays: list[np.ndarray | None], resolution: int) -> list[torch.Tensor | None]:
    """Resize decoded images to [C, R, R], one batched resize per distinct input shape."""
    out: list[torch.Tensor | None] = [None] * len(arrays)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, a in enumerate(arrays):
        if a is not None:
            groups.setdefault(a.shape, []).append(i)
    for idx in groups.values():
        x = torch.from_numpy(np.stack([arrays[i] for i in idx])).permute(0, 3, 1, 2)  # [g, c, s, s]
        x = resize(x.contiguous(), resolution)  # [g, c, R, R]
        for j, i in enumerate(idx):
            out[i] = x[j]
    return out


def load_images(paths: list[Path], resolution: int) -> tuple[list[torch.Tensor | None], list[tuple[int, int] | None]]:
    """Decode on a thread pool in chunks (bounded memory), resize each chunk in batches; also the files' sizes."""
    chunk = max(16, min(4096, DECODE_BUDGET // (48 * resolution * resolution)))  # s < 4R: <= 48 R^2 values
    out: list[torch.Tensor | None] = []
    sizes: list[tuple[int, int] | None] = []
    limit = max_pixels()
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, os.cpu_count() or 1)) as pool:
        for start in range(0, len(paths), chunk):
            decoded = list(pool.map(lambda p: decode(p, resolution, limit), paths[start : start + chunk]))
            out.extend(resize_all([d[0] if d else None for d in decoded], resolution))
            sizes.extend(d[1] if d else None for d in decoded)
    return out, sizes


AUTO_MAX_RESOLUTION = 128  # the largest side chosen from the data when no resolution is given
HEADER_SAMPLE = 256  # files whose headers are read to choose it


@dataclass
class FolderFacts:
    """What a folder holds, from its file list and the headers of up to HEADER_SAMPLE files (nothing decoded)."""

    count: int  # image files
    side: int  # the largest power of two <= the median short side, clamped to 8..AUTO_MAX_RESOLUTION (0: none readable)
    median: int  # the median short side, px
    colour: bool  # any sampled header declares colour (grey stored as RGB is found only when decoding)
    classes: int  # first-level subfolders when every image lies in one (the folder's labels), else 0

    def describe(self) -> str:
        kind = f"{self.classes} classes" if self.classes else "no classes"
        return (f"{self.count:,} images, median side {self.median} px, {'colour' if self.colour else 'grey'}, "
                f"{kind}")


def folder_facts(root: Path) -> FolderFacts:
    paths = find_images(root)
    step = max(1, len(paths) // HEADER_SAMPLE)
    sides, colour, limit = [], False, max_pixels()
    for p in paths[::step][:HEADER_SAMPLE]:
        try:
            with Image.open(p) as img:
                if img.size[0] * img.size[1] > limit:  # the loader skips it too
                    continue
                sides.append(min(img.size))
                colour |= img.mode not in ("1", "L", "LA", "I", "F") and not img.mode.startswith("I;16")
        except Exception:
            continue
    classes = len(first_level_labels(root, paths)[1])
    if not sides:
        return FolderFacts(len(paths), 0, 0, colour, classes)
    median = int(np.median(sides))
    side = min(max(8, 2 ** int(np.log2(max(median, 1)))), AUTO_MAX_RESOLUTION)
    return FolderFacts(len(paths), side, median, colour, classes)


def first_level_labels(root: Path, paths: list[Path]) -> tuple[torch.Tensor | None, list[str]]:
    """Labels from first-level subfolders, or (None, []) when any image is in the root."""
    parts = [p.relative_to(root).parts for p in paths]
    if any(len(rel) < 2 for rel in parts):
        return None, []
    names = sorted({rel[0] for rel in parts})
    index = {name: i for i, name in enumerate(names)}
    return torch.tensor([index[rel[0]] for rel in parts], dtype=torch.long), names


def warn_unreadable(root: Path, bad: list[Path]) -> None:
    names = ", ".join(str(p.relative_to(root)) for p in bad[:WARN_NAMES])
    more = f" and {len(bad) - WARN_NAMES} more" if len(bad) > WARN_NAMES else ""
    console.warn(f"skipped {len(bad)} unreadable image file(s) in {root} (empty, truncated, corrupt, not an "
                 f"image, or over {max_pixels()} pixels): {names}{more}")


def resolve_root(arg: str) -> Path:
    if not arg:
        raise DataError("folder needs a path: folder:PATH")
    root = Path(arg).expanduser()
    if not root.exists():
        raise DataError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; folder:PATH needs a directory of images")
    return root


@DATASETS.register("folder")
def folder(req: DataRequest, arg: str = "") -> Dataset:
    """folder:PATH, every PNG/JPEG/WebP/BMP below PATH; first-level subfolders are classes."""
    check_resolution(req.resolution)
    if req.channels not in (None, 1, 3):
        raise DataError(f"cannot load {req.channels} channels; allowed channels: 1 or 3")
    root = resolve_root(arg)
    paths = find_images(root)
    loaded, sizes = load_images(paths, req.resolution)
    bad = [p for p, x in zip(paths, loaded, strict=True) if x is None]
    good = [(p, x) for p, x in zip(paths, loaded, strict=True) if x is not None]
    if len(good) < MIN_IMAGES:
        found = f"only {len(good)} readable image" if good else "no readable image"
        raise DataError(f"{found} ({', '.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))}) in {root}, of "
                        f"{len(paths)} image file(s); at least {MIN_IMAGES} are needed")
    if bad:
        warn_unreadable(root, bad)
    shapes = {sz for sz in sizes if sz is not None}
    if shapes != {(req.resolution, req.resolution)}:
        short = sorted(min(sz) for sz in shapes)
        console.info(f"folder {root}: {len(good)} image(s) in {len(shapes)} size(s) (short side {short[0]}-"
                     f"{short[-1]} px) centre-cropped to squares and resized to {req.resolution}x{req.resolution}")
    channels = req.channels or (3 if any(x.shape[0] == 3 for _, x in good) else 1)
    x = torch.stack([set_channels(img.unsqueeze(0), channels)[0] for _, img in good])  # [N, C, R, R]
    y, class_names = first_level_labels(root, [p for p, _ in good])
    files = [str(p) for p, _ in good]
    if req.split not in ("train", "all"):
        idx = take_split(len(x), req.split, labels=y, seed=0)  # raises DataError on unknown splits
        x, y, files = x[idx], None if y is None else y[idx], [files[i] for i in idx.tolist()]
    info = {"path": str(root), "skipped": len(bad), "files": files}
    return Dataset(f"folder:{arg}", x.contiguous(), y, "image", class_names, info)


MAX_CAPTION_BYTES = 64 * 1024


@DATASETS.register("captions")
def captions(req: DataRequest, arg: str = "") -> Dataset:
    """captions:PATH, a folder of images (as folder:PATH) each with a NAME.txt beside it: one caption per line."""
    data = folder(req, arg)
    texts, missing = [], []
    for path in map(Path, data.info.pop("files")):
        side = path.with_suffix(".txt")
        lines = []
        if side.is_file() and side.stat().st_size <= MAX_CAPTION_BYTES:
            try:
                lines = [ln.strip() for ln in side.read_text().splitlines() if any(ch.isalpha() for ch in ln)]
            except UnicodeDecodeError:
                lines = []
        if not lines:
            missing.append(path)
        texts.append(lines)
    if missing:
        root = Path(data.info["path"])
        names = ", ".join(str(p.relative_to(root)) for p in missing[:WARN_NAMES])
        more = f" and {len(missing) - WARN_NAMES} more" if len(missing) > WARN_NAMES else ""
        raise DataError(f"{len(missing)} image(s) in {root} have no captions: {names}{more}; each image needs a "
                        "text file of the same name (a.png: a.txt, UTF-8, one caption per line, under 64 KiB)")
    return Dataset(f"captions:{arg}", data.x, None, "image", [], data.info, captions=texts)
