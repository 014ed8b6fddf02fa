"""A deterministic parser of ``shapes`` scenes: what a picture shows, read from pixel colours and geometry.

Each pixel is given the nearest palette colour (or none, when far from all of them and from
the background); each colour's largest connected region is a thing. Its shape comes from how
much of its bounding box it fills (square ~1, circle ~pi/4, triangle ~1/2), its size from the
box's longer side, and relations from the centres. :func:`check` scores a parsed picture
against a caption's meaning (:func:`ganforge.data.shapes.caption`), attribute by attribute.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..data.shapes import BACKGROUND, COLORS, SIZES

ATTRIBUTES = ("count", "color", "shape", "size", "relation")
MAX_COLOR_DISTANCE = 100.0  # RGB units (0-255): farther from every palette colour and the background is no colour
MIN_AREA = 0.35  # of a small triangle's area: smaller regions are specks, not things


def parse(image: torch.Tensor | np.ndarray) -> list[dict]:
    """The things in one image ``[3, H, W]`` in [0, 1]: ``{"color", "shape", "size", "x", "y", "area"}`` each."""
    img = image.detach().cpu().numpy() if torch.is_tensor(image) else np.asarray(image)
    rgb = img.transpose(1, 2, 0).astype(np.float64) * 255  # [H, W, 3]
    res = rgb.shape[0]
    names = list(COLORS)
    palette = np.array([BACKGROUND, *COLORS.values()], np.float64)  # [1 + K, 3]
    dist = np.linalg.norm(rgb[:, :, None, :] - palette[None, None], axis=-1)  # [H, W, 1 + K]
    nearest = dist.argmin(-1)
    nearest[dist.min(-1) > MAX_COLOR_DISTANCE] = 0
    scale = res / 32
    min_area = MIN_AREA * SIZES["small"] ** 2 / 2 * scale**2
    threshold = (SIZES["small"] + SIZES["big"]) / 2 * scale
    things = []
    for k, name in enumerate(names, start=1):
        regions, n = ndimage.label(nearest == k)
        if not n:
            continue
        areas = ndimage.sum(np.ones_like(regions), regions, range(1, n + 1))
        for r in np.flatnonzero(areas >= min_area) + 1:
            ys, xs = np.nonzero(regions == r)
            h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
            things.append({"color": name, "shape": _shape(ys - ys.min(), h, w),
                           "size": "big" if max(h, w) >= threshold else "small",
                           "x": float(xs.mean()), "y": float(ys.mean()), "area": int(len(ys))})
    return things


def _shape(rows: np.ndarray, h: int, w: int) -> str:
    """A region's shape from its pixels' rows (0 = its top): a triangle widens steadily downwards; a square fills
    its box; a circle neither."""
    widths = np.bincount(rows, minlength=h).astype(np.float64)
    if h > 2 and widths.std() > 0 and np.corrcoef(np.arange(h), widths)[0, 1] > 0.75:
        return "triangle"
    return "square" if len(rows) / (h * w) >= 0.85 else "circle"



def describe(things: list[dict]) -> str:
    """What the parser read, in the captions' words: "a big red circle left of a small blue square", "nothing"."""
    if not things:
        return "nothing"
    things = sorted(things, key=lambda t: -t["area"])  # the largest first
    names = [f"a {t['size']} {t['color']} {t['shape']}" for t in things]
    if len(names) == 2:
        a, b = things
        dx, dy = b["x"] - a["x"], b["y"] - a["y"]
        rel = ("left of" if dx > 0 else "right of") if abs(dx) > abs(dy) else ("above" if dy > 0 else "below")
        return f"{names[0]} {rel} {names[1]}"
    return ", ".join(names)


def relation_holds(a: dict, b: dict, relation: str) -> bool:
    """``a relation b`` along the axis on which they are farther apart."""
    dx, dy = b["x"] - a["x"], b["y"] - a["y"]
    if relation in ("left", "right"):
        return abs(dx) > abs(dy) and (dx > 0) == (relation == "left")
    return abs(dy) > abs(dx) and (dy > 0) == (relation == "above")


def check(things: list[dict], meaning: dict) -> dict[str, bool]:
    """Which attributes of a caption's meaning a parsed picture gets right, and ``all``."""
    wanted = meaning["things"]
    found = [next((t for t in things if t["color"] == w["color"]), None) for w in wanted]
    ok = {
        "count": len(things) == len(wanted),
        "color": all(f is not None for f in found),
        "shape": all(f is not None and f["shape"] == w["shape"] for f, w in zip(found, wanted)),
        "size": all(f is not None and (w["size"] is None or f["size"] == w["size"]) for f, w in zip(found, wanted)),
        "relation": meaning["relation"] is None or (None not in found and relation_holds(*found, meaning["relation"])),
    }
    ok["all"] = all(ok.values())
    return ok


def scene_accuracy(images: torch.Tensor, meanings: list[dict]) -> dict[str, float]:
    """The share of images ``[N, 3, H, W]`` (in [0, 1]) whose every attribute (``all``), and each one, matches;
    ``relation`` and ``size`` are shares of the captions that name a relation / a size."""
    checks = [check(parse(x), m) for x, m in zip(images, meanings)]
    applies = {"relation": [m["relation"] is not None for m in meanings],  # of the captions that name one
               "size": [any(t["size"] for t in m["things"]) for m in meanings]}
    out = {}
    for k in (*ATTRIBUTES, "all"):
        mask = applies.get(k, [True] * len(checks))
        out[k] = float(np.mean([c[k] for c, a in zip(checks, mask) if a])) if any(mask) else float("nan")
    return out
