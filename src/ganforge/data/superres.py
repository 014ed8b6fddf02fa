"""Super-resolution data: high-resolution patches; the low-resolution inputs are made from them.

``sr:SOURCE`` holds HR patches only (``resolution`` px, RGB). The SR recipes make each batch's LR
input on the fly with :func:`degrade` (antialiased bicubic downsampling, optionally after a random
blur and followed by random noise, then 8-bit quantisation), so the degradation is a choice of the
run, not of the data, and a patch is seen with fresh noise every time.

* ``sr:photos`` - scikit-image's colour photographs: training patches are random crops of the
  seven training photos at their own resolution and two smaller ones (:data:`SR_SCALES`); the
  split is by photo, ``chelsea`` and ``rocket`` are
  held out whole (the same photos edges2photos and gray2color hold out).
* ``sr:folder:PATH`` - any folder of images: a fixed fifth of the files (by sorted name, at least
  one when there are two or more) is held out whole, patches are cropped from the rest.

:func:`held_out_images` gives the held-out photos whole, at their own size, for evaluation.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .base import DATASETS, DataRequest, Dataset
from .folder import find_images, resolve_root
from .images import check_resolution
from .translation import HELD_OUT_PHOTOS, TRAIN_PHOTOS, read_image

PATCHES_PER_SCALE = 192  # random crops per training photo and zoom (sr:photos)
SR_SCALES = (256, 384, 0)  # sr:photos: the short side the photos are resized to before cropping; 0: as shipped
FOLDER_PATCHES = 4000  # random crops over a folder's training images, shared by area
HELD_OUT_EVERY = 5  # sr:folder: every 5th file (sorted) is held out


def _crops(img: torch.Tensor, side: int, n: int, rng: np.random.Generator) -> list[torch.Tensor]:
    h, w = img.shape[1:]
    if h < side or w < side:
        return []
    tops, lefts = rng.integers(0, h - side + 1, n), rng.integers(0, w - side + 1, n)
    return [img[:, t : t + side, le : le + side] for t, le in zip(tops, lefts)]


def _rgb(img: torch.Tensor) -> torch.Tensor:
    return img.expand(3, -1, -1) if img.shape[0] == 1 else img[:3]


def _folder_files(arg: str) -> tuple[list, list]:
    root = resolve_root(arg)
    files = find_images(root)
    if not files:
        raise DataError(f"sr:folder:{arg} holds no image (png, jpg, jpeg, webp, bmp, gif, tif)")
    held = set(files[HELD_OUT_EVERY - 1 :: HELD_OUT_EVERY]) if len(files) >= HELD_OUT_EVERY else (
        {files[-1]} if len(files) >= 2 else set())
    return [f for f in files if f not in held], sorted(held)


def held_out_images(source: str) -> list[tuple[str, torch.Tensor]]:
    """(name, RGB [3, H, W] in [0, 1]) of the held-out images of ``sr:SOURCE``, whole."""
    if source == "photos":
        return [(name, _photo_native(name)) for name in HELD_OUT_PHOTOS]
    kind, _, arg = source.partition(":")
    if kind != "folder":
        raise DataError(f"sr:{source} is not a super-resolution source; allowed: sr:photos, sr:folder:PATH")
    out = []
    for path in _folder_files(arg)[1]:
        try:
            out.append((path.name, _rgb(read_image(path))))
        except DataError:
            continue
    return out


def _photo_native(name: str, short_side: int = 0) -> torch.Tensor:
    """A bundled photo as RGB [3, H, W] in [0, 1], at its own size or resized (Lanczos) to ``short_side``."""
    import os

    import skimage
    from PIL import Image

    with Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", name)) as img:
        img = img.convert("RGB")
        if short_side:
            f = short_side / min(img.size)
            img = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.LANCZOS)
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


@DATASETS.register("sr")
def superres(req: DataRequest, arg: str = "photos") -> Dataset:
    """super-resolution: HR patches of sr:photos (scikit-image's photos) or sr:folder:PATH; LR made by the recipe."""
    check_resolution(req.resolution)
    if req.channels not in (None, 3):
        raise DataError(f"super-resolution works on RGB; --channels {req.channels} is not allowed (grey images are "
                        "upscaled as RGB and converted back)")
    rng = np.random.default_rng(0)  # fixed: the bundled task is the same for every --seed
    side = req.resolution
    if arg == "photos":
        if req.split == "train":
            patches = [c for name in TRAIN_PHOTOS for s in SR_SCALES
                       for c in _crops(_photo_native(name, s and max(s, side)), side, PATCHES_PER_SCALE, rng)]
        else:  # held-out photos: a fixed grid of crops (training-time checks; evaluation uses them whole)
            patches = [img[:, t : t + side, le : le + side] for _, img in held_out_images("photos")
                       for t in range(0, img.shape[1] - side + 1, side)
                       for le in range(0, img.shape[2] - side + 1, side)]
        sources = list(TRAIN_PHOTOS if req.split == "train" else HELD_OUT_PHOTOS)
    elif arg.startswith("folder:"):
        train, held = _folder_files(arg[len("folder:"):])
        files = train if req.split == "train" else held
        images = []
        for path in files:
            try:
                images.append(_rgb(read_image(path)))
            except DataError:
                continue
        images = [im for im in images if min(im.shape[1:]) >= side]
        if not images:
            raise DataError(f"sr:{arg} has no {req.split} image of at least {side}x{side} px (--resolution is the "
                            "HR patch side)")
        areas = np.array([im.shape[1] * im.shape[2] for im in images], dtype=np.float64)
        counts = np.maximum(1, np.round(FOLDER_PATCHES * areas / areas.sum())).astype(int)
        patches = [c for im, n in zip(images, counts) for c in _crops(im, side, int(n), rng)]
        sources = [p.name for p in files]
    else:
        raise DataError(f"sr:{arg} is not a super-resolution source; allowed: sr:photos, sr:folder:PATH")
    x = torch.stack(patches).contiguous()
    return Dataset(f"sr:{arg}", x, None, "image", [], {"sources": sources, "held_out": True, "patches": True})


# ------------------------------------------------------------------ degradation


def gaussian_kernels(sigmas: torch.Tensor, size: int) -> torch.Tensor:
    """[N] standard deviations -> [N, size, size] normalised Gaussian kernels."""
    r = torch.arange(size, device=sigmas.device, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(r[None] ** 2) / (2 * sigmas[:, None].clamp_min(1e-3) ** 2))  # [N, size]
    k = g[:, :, None] * g[:, None, :]
    return k / k.sum((1, 2), keepdim=True)


def degrade(hr: torch.Tensor, scale: int, blur: torch.Tensor | None = None, noise: torch.Tensor | None = None,
            quantize: bool = True, max_blur: float | None = None) -> torch.Tensor:
    """HR images [N, C, H, W] in [0, 1] -> LR [N, C, H/scale, W/scale] in [0, 1].

    ``blur``: [N] Gaussian sigmas in HR pixels applied before downsampling (0: none), with a kernel sized
    for ``max_blur`` (default: the largest sigma given); downsampling is
    PyTorch's antialiased bicubic; ``noise``: [N, C, h, w] additive noise (already scaled) after it;
    then the values are clamped and, with ``quantize``, rounded to 8 bits as a saved image would be.
    """
    x = hr.float()
    if blur is not None and bool((blur > 0).any()):
        n, c = x.shape[:2]
        bound = float(blur.max()) if max_blur is None else max_blur
        size = 2 * int(math.ceil(3 * bound)) + 1
        k = gaussian_kernels(blur, size).repeat_interleave(c, 0)[:, None]  # [N*C, 1, s, s]
        x = F.conv2d(F.pad(x.reshape(1, n * c, *x.shape[2:]), [size // 2] * 4, mode="reflect"), k,
                     groups=n * c).view_as(x)
    lr = F.interpolate(x, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    if noise is not None:
        lr = lr + noise
    lr = lr.clamp(0, 1)
    return torch.round(lr * 255) / 255 if quantize else lr


def bicubic_up(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline: bicubic upsampling, clamped to [0, 1]."""
    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
