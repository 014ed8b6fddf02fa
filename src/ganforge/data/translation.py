"""Two-domain image data for image-to-image translation: ``x`` is domain A, ``x_b`` domain B.

* ``paired:DIR`` - Isola et al.'s format: side-by-side ``A|B`` images (the original datasets), or
  ``DIR/A`` and ``DIR/B`` holding files of matching names (extensions may differ). With
  ``DIR/train`` and ``DIR/test`` (or ``DIR/val``) those are the splits; otherwise a fixed 20 % of
  the pairs (by file, at least one of five or more) is held out from training.
* ``unpaired:DIR_A,DIR_B`` - any two image folders (each read like ``folder:``, any sizes and
  modes; first-level subfolders are classes and are used only for evaluation).
* ``edges2photos`` / ``gray2color`` - patches of scikit-image's colour sample photos: Canny edges
  -> photo, and grey -> colour. The split is by source photo: no patch of a held-out photo is
  trained on.
* ``digits2typeset`` - unpaired: the bundled handwritten digits (A) and digits 0-9 typeset with
  Pillow's built-in font, white on black, in varied sizes, weights and offsets (B). Labels are
  kept for evaluation; training never pairs images.

Each half or image is centre-cropped to a square and resized to the resolution (as ``folder:``).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import DataError
from .base import DATASETS, DataRequest, Dataset, split_indices
from .digits import digits
from .folder import find_images, folder, max_pixels, resolve_root, to_array
from .images import SPLIT_TEST_FRACTION, check_resolution, set_channels, square

SHOWN = 5  # unmatched names listed in an error

# ------------------------------------------------------------------ paired:DIR


def read_image(path: Path) -> torch.Tensor:
    """Any image file PIL reads -> [C, H, W] float32 in [0, 1] (alpha composited on black, 16-bit scaled,
    animations' first frame); a one-line DataError for anything unreadable or over the pixel limit."""
    try:
        with Image.open(path) as img:
            if img.size[0] * img.size[1] > max_pixels():
                raise DataError(f"{path} has {img.size[0]}x{img.size[1]} pixels, over the limit of {max_pixels()} "
                                "(GANFORGE_MAX_IMAGE_PIXELS)")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            return torch.from_numpy(np.ascontiguousarray(to_array(img))).permute(2, 0, 1)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"cannot read {path} as an image ({type(e).__name__}); fix or remove it") from None


def _pairs_in(root: Path) -> list[tuple[Path, Path | None]]:
    """(A file, B file) for ``root/A`` + ``root/B`` matched by name, or (A|B file, None) per image."""
    a_dir, b_dir = root / "A", root / "B"
    if a_dir.is_dir() and b_dir.is_dir():
        def by_stem(d: Path) -> dict[str, Path]:
            return {str(p.relative_to(d).with_suffix("")): p for p in find_images(d)}

        a, b = by_stem(a_dir), by_stem(b_dir)
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        if only_a or only_b:
            def names(keys: list[str]) -> str:
                return ", ".join(keys[:SHOWN]) + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")

            parts = [f"{len(only_a)} in A without a partner in B ({names(only_a)})" if only_a else "",
                     f"{len(only_b)} in B without a partner in A ({names(only_b)})" if only_b else ""]
            raise DataError(f"paired data {root}: files must match by name: " + "; ".join(p for p in parts if p))
        return [(a[k], b[k]) for k in sorted(a)]
    return [(p, None) for p in find_images(root)]


def _load_pairs(root: Path, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = _pairs_in(root)
    if not pairs:
        raise DataError(f"paired data {root} holds no image; expected side-by-side A|B images, or A/ and B/ "
                        "folders of files with matching names")
    xa, xb = [], []
    for a_path, b_path in pairs:
        if b_path is None:  # one A|B image
            ab = read_image(a_path)
            h, w = ab.shape[1:]
            if w % 2:
                raise DataError(f"{a_path} is {w}x{h}: a side-by-side A|B image needs an even width (two equal "
                                "halves); or give A/ and B/ folders")
            a, b = ab[:, :, : w // 2], ab[:, :, w // 2 :]
        else:
            a, b = read_image(a_path), read_image(b_path)
            if a.shape[1:] != b.shape[1:]:
                raise DataError(f"{a_path} is {a.shape[2]}x{a.shape[1]} but its partner {b_path} is "
                                f"{b.shape[2]}x{b.shape[1]}; the two images of a pair must have one size")
        xa.append(square(a, resolution))
        xb.append(square(b, resolution))

    def stack(xs: list[torch.Tensor]) -> torch.Tensor:
        c = 3 if any(x.shape[0] == 3 for x in xs) else 1
        return torch.stack([set_channels(x.unsqueeze(0), c)[0] for x in xs])

    return stack(xa), stack(xb)


@DATASETS.register("paired")
def paired(req: DataRequest, arg: str = "") -> Dataset:
    """paired:DIR, side-by-side A|B images or DIR/A + DIR/B (paired translation); DIR/train + DIR/test as splits."""
    check_resolution(req.resolution)
    root = resolve_root(arg)
    test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        xa, xb = _load_pairs(root / "train" if req.split == "train" else test_dir, req.resolution)
        if req.split == "all":
            xa2, xb2 = _load_pairs(root / "train", req.resolution)
            xa, xb = torch.cat([xa2, xa]), torch.cat([xb2, xb])
        held_out = True
    else:
        xa, xb = _load_pairs(root, req.resolution)
        held_out = len(xa) >= 5  # fewer pairs: measured on the training pairs themselves, and said so
        if held_out and req.split != "all":
            test, train = split_indices(len(xa), SPLIT_TEST_FRACTION, seed=0)
            idx = test if req.split == "test" else train
            xa, xb = xa[idx], xb[idx]
    if req.channels:
        xa = set_channels(xa, req.channels)
    info = {"path": str(root), "held_out": held_out}
    return Dataset(f"paired:{arg}", xa.contiguous(), None, "image", [], info, xb.contiguous(), None, True)


# ------------------------------------------------------------------ unpaired:DIR_A,DIR_B


@DATASETS.register("unpaired")
def unpaired(req: DataRequest, arg: str = "") -> Dataset:
    """unpaired:DIR_A,DIR_B, two image folders (any sizes and modes), for unpaired translation."""
    dirs = [d for d in arg.split(",")]
    if len(dirs) != 2 or not all(d.strip() for d in dirs):
        raise DataError(f"unpaired:{arg} names {len(dirs)} folder(s); expected unpaired:DIR_A,DIR_B")
    a, b = (folder(req, d.strip()) for d in dirs)
    same_classes = a.class_names and a.class_names == b.class_names  # labels to check translations with
    return Dataset(f"unpaired:{arg}", a.x, a.y if same_classes else None, "image",
                   a.class_names if same_classes else [], {"domains": dirs, "held_out": False}, b.x,
                   b.y if same_classes else None)


# ------------------------------------------------------------------ digits2typeset

TYPESET_SEEDS = {"train": 0, "test": 1, "all": 0}  # the held-out typeset digits are drawn from another seed
TYPESET_PER_CLASS = {"train": 150, "test": 50}


TYPESET_HEIGHTS = (0.7, 0.95)  # of the side: the handwritten digits fill their frame's height too
TYPESET_SHIFT = 0.06


def render_typeset(labels: torch.Tensor, resolution: int, seed: int, heights: tuple[float, float] = TYPESET_HEIGHTS,
                   shift: float = TYPESET_SHIFT) -> torch.Tensor:
    """Digits ``labels`` typeset with Pillow's built-in font, white on black: [N, 1, R, R] in [0, 1].

    Each is drawn at 4x and shrunk (antialiased), with a random glyph height (``heights``, as
    fractions of the side), stroke weight (regular or bold), small rotation (+-8 deg) and offset
    (+-``shift`` of the side).
    """
    rng = np.random.default_rng(seed)
    big = 4 * resolution
    out = []
    for label in labels.tolist():
        height = rng.uniform(*heights) * big
        font = ImageFont.load_default(size=max(8, int(round(height * 1.35))))
        stroke = int(rng.integers(0, 2)) * max(1, big // 48)
        canvas = Image.new("L", (2 * big, 2 * big), 0)
        draw = ImageDraw.Draw(canvas)
        draw.text((big, big), str(label), fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255)
        canvas = canvas.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR)
        box = canvas.getbbox() or (0, 0, 2 * big, 2 * big)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2  # centre the glyph's ink, then offset it
        dx, dy = rng.uniform(-shift, shift, size=2) * big
        left, top = int(round(cx - big / 2 - dx)), int(round(cy - big / 2 - dy))
        tile = canvas.crop((left, top, left + big, top + big))
        out.append(torch.from_numpy(np.asarray(tile, dtype=np.float32) / 255.0))
    x = torch.stack(out).unsqueeze(1)  # [N, 1, 4R, 4R]
    return torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear",
                                           antialias=True, align_corners=False).clamp(0, 1)


def typeset_digits(split: str, resolution: int, per_class: int | None = None, seed: int | None = None,
                   **style) -> tuple[torch.Tensor, torch.Tensor]:
    """Typeset digits of a split (train: 150 per class, test: 50 per class from another seed) and labels;
    ``style``: :func:`render_typeset`'s ``heights`` and ``shift``."""
    per_class = per_class or TYPESET_PER_CLASS.get(split, 200)
    labels = torch.arange(10).repeat(per_class)
    return render_typeset(labels, resolution, TYPESET_SEEDS[split] if seed is None else seed, **style), labels


@DATASETS.register("digits2typeset")
def digits2typeset(req: DataRequest) -> Dataset:
    """unpaired: handwritten digits (A) and Pillow-typeset digits (B), labels for evaluation only."""
    check_resolution(req.resolution)
    a = digits(DataRequest(req.resolution, req.channels, req.root, req.split, req.seed))
    if req.split == "all":
        parts = [typeset_digits(s, req.resolution) for s in ("train", "test")]
        xb, yb = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    else:
        xb, yb = typeset_digits(req.split, req.resolution)
    xb = set_channels(xb, req.channels)
    return Dataset("digits2typeset", a.x, a.y, "image", list(a.class_names),
                   {"domains": ["handwritten", "typeset"], "held_out": True},
                   xb.contiguous(), yb, False)


# ------------------------------------------------------------------ edges2photos, gray2color

# scikit-image's colour photographs. The two motorcycle views are one scene: both train.
TRAIN_PHOTOS = ("astronaut.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
                "motorcycle_right.png", "retina.jpg")
HELD_OUT_PHOTOS = ("chelsea.png", "rocket.jpg")
TRAIN_SCALES = (128, 192, 256, 320)  # the photo's short side before cropping (random crops at several zooms)
HELD_OUT_SCALES = (192, 256)
TRAIN_PATCHES_PER_SCALE = 64


@functools.lru_cache(maxsize=64)
def _photo(name: str, short_side: int) -> torch.Tensor:
    """A bundled photo resized to ``short_side`` (cached: callers copy what they keep, never write to it)."""
    import skimage

    with Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", name)) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = short_side / min(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)  # [3, H, W]


def grey(x: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] -> [..., 1, H, W] ITU-R 601 luma."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(-3, keepdim=True)


def canny_edges(photo: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """[3 or 1, H, W] in [0, 1] -> [1, H, W] Canny edges (1 on an edge, 0 elsewhere)."""
    from skimage.feature import canny

    g = grey(photo) if photo.shape[0] == 3 else photo
    return torch.from_numpy(canny(g[0].numpy().astype(np.float64), sigma=sigma).astype(np.float32)).unsqueeze(0)


def photo_patches(split: str, resolution: int) -> tuple[torch.Tensor, list[str]]:
    """RGB patches [N, 3, R, R]: random crops of the training photos at several scales, or a fixed grid
    of crops of the held-out photos; edges and grey are computed per photo before cropping (so a
    patch's edges are those of the photo, as a tiled big image sees them)."""
    names = {"train": TRAIN_PHOTOS, "test": HELD_OUT_PHOTOS, "all": TRAIN_PHOTOS + HELD_OUT_PHOTOS}.get(split)
    if names is None:
        raise DataError(f"unknown split {split!r}; allowed: train, test, all")
    rng = np.random.default_rng(0)  # fixed: the bundled tasks are the same for every --seed
    patches, sources = [], []
    for name in names:
        for side in (TRAIN_SCALES if name in TRAIN_PHOTOS else HELD_OUT_SCALES):
            side = max(side, resolution)
            photo = _photo(name, side)
            full = torch.cat([photo, canny_edges(photo)])  # [4, H, W]: RGB and edges, cropped together
            h, w = photo.shape[1:]
            if name in TRAIN_PHOTOS:
                tops = rng.integers(0, h - resolution + 1, TRAIN_PATCHES_PER_SCALE)
                lefts = rng.integers(0, w - resolution + 1, TRAIN_PATCHES_PER_SCALE)
                corners = list(zip(tops, lefts))
            else:
                corners = [(t, left) for t in range(0, h - resolution + 1, resolution)
                           for left in range(0, w - resolution + 1, resolution)]
            patches += [full[:, t : t + resolution, left : left + resolution] for t, left in corners]
            sources += [name] * len(corners)
    return torch.stack(patches), sources


def _photo_task(req: DataRequest, name: str) -> Dataset:
    check_resolution(req.resolution)
    if req.resolution < 16:
        raise DataError(f"{name} patches need a resolution of at least 16; got {req.resolution}")
    p, sources = photo_patches(req.split, req.resolution)
    photo, edges = p[:, :3], p[:, 3:]
    a = edges if name == "edges2photos" else grey(photo)
    info = {"sources": sorted(set(sources)), "held_out": True, "patches": True}
    return Dataset(name, a.contiguous(), None, "image", [], info, photo.contiguous(), None, True)


@DATASETS.register("edges2photos")
def edges2photos(req: DataRequest) -> Dataset:
    """paired: Canny edges -> photo patches of scikit-image's colour photos (held out by photo)."""
    return _photo_task(req, "edges2photos")


@DATASETS.register("gray2color")
def gray2color(req: DataRequest) -> Dataset:
    """paired: grey -> colour patches of scikit-image's colour photos (held out by photo)."""
    return _photo_task(req, "gray2color")
