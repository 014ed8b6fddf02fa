"""Accountable output: every image ganforge writes says where it came from.

Two marks, both read back by ``ganforge verify``:

- **Metadata**, on every PNG (text chunks ``ganforge:*``: software version, run, run id, recipe,
  seed and what made it) and GIF (one JSON comment). Honest but fragile: a re-encode or a
  screenshot drops it.
- **An invisible watermark**, on 8-bit RGB(A) images whose shorter side is at least
  :data:`MIN_SIDE` px: the 32-bit pattern :data:`MAGIC` embedded by the invisible-watermark
  package's DWT-DCT-SVD method (the library Stable Diffusion's reference scripts used) in the
  chroma (U) channel, so the picture does not visibly change (about 48 dB PSNR). It survives
  JPEG re-encoding; it does not survive resizing or cropping off the top-left corner
  (benchmarks/RESULTS.md measures both; ``verify --thorough`` undoes the usual resize factors).
  Large images are marked tile by tile (:data:`TILE` px), so memory stays bounded; the top-left
  tile is read back. Grey and 16-bit images have no chroma to carry it and get the metadata only,
  as do small images.

The watermark is on by default so that a generated image stays recognisable as generated after
it leaves the run directory; ``ganforge --no-watermark ...`` or ``GANFORGE_WATERMARK=0`` turns it off.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_path

MAGIC = bytes.fromhex("9a3c5e71")  # 32 bits, balanced and without long runs of equal bits
MAGIC_BITS = np.unpackbits(np.frombuffer(MAGIC, dtype=np.uint8))
METHOD = "dwtDctSvd"
MIN_SIDE = 256  # the library needs 256 x 256 px at least; smaller images carry the metadata only
TILE = 512  # marked independently; edge remainders under MIN_SIDE join the tile before them
MAX_BIT_ERRORS = 4  # read-back tolerance; unmarked photos give 10-21 of 32 wrong (chance: 16)
# verify --thorough: resize factors undone before reading (the mark is read back only within ~1 % of
# the marked size, so a search over every factor would take seconds per image; these are the usual ones)
COMMON_RESIZES = (0.5, 2 / 3, 0.75, 0.8, 0.9, 1.1, 1.25, 1.5, 2.0)
PREFIX = "ganforge:"

_enabled: bool | None = None


def watermarking() -> bool:
    """Whether images get the invisible watermark: on unless turned off (CLI --no-watermark, GANFORGE_WATERMARK=0)."""
    if _enabled is not None:
        return _enabled
    return os.environ.get("GANFORGE_WATERMARK", "1").strip().lower() not in ("0", "false", "off", "no")


def set_watermarking(on: bool | None) -> None:
    """Turn the watermark on or off for this process (None: back to GANFORGE_WATERMARK)."""
    global _enabled
    _enabled = on


# --------------------------------------------------------------------------- what made an image
def run_id(run_dir: str | Path) -> str:
    """The run's id from run.json (stable across resumes), or the directory's name for older runs."""
    from .rundir import read_meta

    return str(read_meta(run_dir).get("run_id") or Path(run_dir).name)


def provenance(recipe: str, run_dir: str | Path, **extra: Any) -> dict[str, str]:
    """What an image's metadata says: software, synthetic, recipe, run, run id, and ``extra`` (seed, step, ...)."""
    from ..version import __version__

    info = {"software": f"ganforge {__version__}", "synthetic": "true", "recipe": str(recipe),
            "run": str(run_dir), "run_id": run_id(run_dir)}
    info.update({k: str(v) for k, v in extra.items() if v is not None})
    return info


def info_of(model: Any, **extra: Any) -> dict[str, str]:
    """:func:`provenance` of a loaded model (``ganforge.load``)."""
    return provenance(model.recipe.cfg.recipe, model.run_dir, **extra)


# --------------------------------------------------------------------------- the watermark
def _spans(size: int) -> list[tuple[int, int]]:
    starts = list(range(0, size, TILE))
    if len(starts) > 1 and size - starts[-1] < MIN_SIDE:
        starts.pop()
    return [(s, (starts[i + 1] if i + 1 < len(starts) else size)) for i, s in enumerate(starts)]


def can_mark(arr: np.ndarray) -> bool:
    return arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] in (3, 4) and min(arr.shape[:2]) >= MIN_SIDE


def mark_array(arr: np.ndarray) -> bool:
    """Embed the watermark in an 8-bit [H, W, 3 | 4] RGB(A) array in place, tile by tile; returns
    whether it was marked (False for grey, 16-bit or small images, or with the watermark off)."""
    if not watermarking() or not can_mark(arr):
        return False
    from imwatermark import WatermarkEncoder

    enc = WatermarkEncoder()
    enc.set_watermark("bytes", MAGIC)
    for t, b in _spans(arr.shape[0]):
        for le, r in _spans(arr.shape[1]):
            bgr = np.ascontiguousarray(arr[t:b, le:r, 2::-1])
            arr[t:b, le:r, :3] = enc.encode(bgr, METHOD)[:, :, ::-1]
    return True


def bit_errors(rgb: np.ndarray) -> int | None:
    """Wrong bits of :data:`MAGIC` read from the top-left tile of an RGB array (None: too small to carry one)."""
    if rgb.ndim != 3 or min(rgb.shape[:2]) < MIN_SIDE:
        return None
    from imwatermark import WatermarkDecoder

    (t, b), (le, r) = _spans(rgb.shape[0])[0], _spans(rgb.shape[1])[0]
    bits = WatermarkDecoder("bits", len(MAGIC_BITS)).decode(np.ascontiguousarray(rgb[t:b, le:r, 2::-1]), METHOD)
    return int((np.asarray(bits) != MAGIC_BITS).sum())


def has_watermark(rgb: np.ndarray) -> bool:
    errors = bit_errors(rgb)
    return errors is not None and errors <= MAX_BIT_ERRORS


# --------------------------------------------------------------------------- writing
def to_pil(image: Any):
    """A tensor [C, H, W] in [0, 1] (1, 3 or 4 channels), a numpy array or a PIL image -> a PIL image."""
    import torch
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    if torch.is_tensor(image):
        arr = (image.detach().float().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
        image = arr[:, :, 0] if arr.shape[2] == 1 else arr
    return Image.fromarray(np.ascontiguousarray(image))


def png_info(info: dict[str, str], marked: bool):
    from PIL.PngImagePlugin import PngInfo

    meta = PngInfo()
    meta.add_text("Software", info.get("software", "ganforge"))
    for key, value in {**info, "watermark": f"{METHOD} {MAGIC.hex()}" if marked else "none"}.items():
        meta.add_text(PREFIX + key, str(value))
    return meta


def stamped(image: Any, marked: bool | None = None):
    """(PIL image, whether it carries the watermark): marked here unless ``marked`` says it was already decided."""
    pil = to_pil(image)
    if marked is None:
        marked = False
        if pil.mode in ("RGB", "RGBA") and min(pil.size) >= MIN_SIDE and watermarking():
            arr = np.array(pil)
            marked = mark_array(arr)
            from PIL import Image

            pil = Image.fromarray(arr, pil.mode)
    return pil, marked


def save_png(image: Any, path: str | Path, info: dict[str, str], marked: bool | None = None,
             compress_level: int = 6) -> Path:
    """Write ``image`` as a PNG with its provenance (and the watermark where it fits), atomically."""
    pil, marked = stamped(image, marked)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="png", pnginfo=png_info(info, marked), compress_level=compress_level)
    return Path(path)


def png_bytes(image: Any, info: dict[str, str], compress_level: int = 1) -> bytes:
    """The PNG :func:`save_png` would write, in memory (for the demo and the HTTP server)."""
    import io

    pil, marked = stamped(image)
    buf = io.BytesIO()
    pil.save(buf, format="png", pnginfo=png_info(info, marked), compress_level=compress_level)
    return buf.getvalue()


def gif_comment(info: dict[str, str]) -> bytes:
    return json.dumps({PREFIX + k: v for k, v in info.items()}, sort_keys=True).encode()


# --------------------------------------------------------------------------- reading back
def metadata_of(img) -> dict[str, str]:
    """The ``ganforge:*`` entries of a PIL image's PNG text chunks or GIF comment."""
    found = {k[len(PREFIX):]: str(v) for k, v in getattr(img, "text", {}).items() if k.startswith(PREFIX)}
    comment = img.info.get("comment")
    if not found and comment:
        try:
            data = json.loads(comment)
            found = {k[len(PREFIX):]: str(v) for k, v in data.items() if k.startswith(PREFIX)}
        except (ValueError, AttributeError):
            pass
    return found


def undo_resizes(rgb: np.ndarray) -> list[np.ndarray]:
    """The image brought back from each of :data:`COMMON_RESIZES` (bicubic), where that is big enough."""
    from PIL import Image

    img, out = Image.fromarray(rgb), []
    for f in COMMON_RESIZES:
        size = (round(img.width / f), round(img.height / f))
        if min(size) >= MIN_SIDE and max(size) <= 8192:
            out.append(np.asarray(img.resize(size, Image.BICUBIC)))
    return out


def verify(path: str | Path, thorough: bool = False) -> dict[str, Any]:
    """What an image says about its origin: ``{"path", "readable", "watermark" (True, False, or None if
    too small or not colour to carry one), "bit_errors", "metadata"}``; ``thorough`` also reads the
    image as it was before a resize by one of :data:`COMMON_RESIZES` (``"resized"``: the factor found)."""
    from PIL import Image

    result: dict[str, Any] = {"path": str(path), "readable": False, "watermark": None, "bit_errors": None,
                              "metadata": {}}
    try:
        with Image.open(path) as img:
            img.load()
            result["metadata"] = metadata_of(img)
            rgb = np.asarray(img.convert("RGB")) if img.mode not in ("L", "I;16", "I", "F", "1", "LA") else None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return result
    result["readable"] = True
    if rgb is not None:
        result["bit_errors"] = bit_errors(rgb)
        if result["bit_errors"] is not None:
            result["watermark"] = result["bit_errors"] <= MAX_BIT_ERRORS
        if thorough and not result["watermark"]:
            for f, back in zip(COMMON_RESIZES, undo_resizes(rgb)):
                if has_watermark(back):
                    result.update(watermark=True, resized=f)
                    break
    return result


def verdict_line(v: dict[str, Any]) -> str:
    """One line for ``ganforge verify``."""
    if not v["readable"]:
        return f"{v['path']}: not a readable image"
    meta, wm = v["metadata"], v["watermark"]
    found = [what for what, ok in (("watermark found", wm), ("metadata found", bool(meta))) if ok]
    if not found:
        why = "" if wm is not None else " (too small or not colour to carry the watermark)"
        return f"{v['path']}: no ganforge watermark or metadata found{why}"
    who = ""
    if meta:
        parts = [f"run {meta['run']}" if "run" in meta else "", f"id {meta['run_id']}" if "run_id" in meta else "",
                 f"recipe {meta['recipe']}" if "recipe" in meta else "", f"seed {meta['seed']}" if "seed" in meta
                 else ""]
        who = ": " + ", ".join(p for p in parts if p)
    if v.get("resized"):
        found[0] += f" after a resize by {v['resized']:.3g}"
    return f"{v['path']}: made by ganforge ({', '.join(found)}){who}"
