"""``ganforge data DIR``: what a folder of images holds before training on it.

Counts, pixel sizes and aspect ratios, colour modes, exact duplicates (same bytes), near duplicates
(the same picture re-encoded, resized or slightly brightened: equal after a 16x16 grey thumbnail with
its mean and contrast normalised), unreadable files, and a contact sheet PNG. Nothing is changed:
training reads any sizes, modes and aspect ratios itself (see :mod:`ganforge.data.folder`).
"""
from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from .folder import MAX_WORKERS, center_square, find_images, first_level_labels, max_pixels, to_array

THUMB = 16  # side of the thumbnails near duplicates are compared at
# RMS difference of normalised thumbnails (in standard deviations) under which two files are one picture: the
# same photo brightened, or shrunk 3x and saved as JPEG q75, is 0.00-0.08; different photos 1.2-1.8; the closest
# pairs of distinct pictures in the bundled sets: digits 0.1 % of files, 40-image shape scenes 2 % (benchmarks)
NEAR = 0.1
SHEET_IMAGES, SHEET_SIDE = 64, 64  # the contact sheet: up to 64 images, 64 px each, 8 per row


@dataclass
class FileFacts:
    path: Path
    size: tuple[int, int] | None = None  # (width, height); None: unreadable
    mode: str = ""
    digest: str = ""
    thumb: np.ndarray | None = None  # [THUMB * THUMB] normalised grey
    problem: str = ""


@dataclass
class FolderReport:
    root: Path
    files: list[FileFacts]
    classes: dict[str, int] = field(default_factory=dict)  # first-level subfolder -> image files in it
    exact: list[list[Path]] = field(default_factory=list)  # groups of byte-identical files
    near: list[list[Path]] = field(default_factory=list)  # groups of the same picture in different files

    @property
    def readable(self) -> list[FileFacts]:
        return [f for f in self.files if f.size is not None]

    def lines(self) -> list[str]:
        ok, bad = self.readable, [f for f in self.files if f.size is None]
        if not ok:
            return [f"{self.root}: {len(self.files)} image files, none readable"]
        w = np.array([f.size[0] for f in ok])
        h = np.array([f.size[1] for f in ok])
        short, ratio = np.minimum(w, h), w / h
        out = [f"{self.root}: {len(self.files):,} image files, {len(ok):,} readable"
               + (f", {len(self.classes)} classes ({', '.join(f'{k} {v}' for k, v in list(self.classes.items())[:10])}"
                  f"{', ...' if len(self.classes) > 10 else ''})" if self.classes else ", no classes (one flat set)"),
               f"short side px: min {short.min()}, median {int(np.median(short))}, max {short.max()}; "
               f"square {np.mean(np.abs(ratio - 1) < 0.05):.0%}, landscape {np.mean(ratio >= 1.05):.0%}, "
               f"portrait {np.mean(ratio <= 0.95):.0%} (training centre-crops each to a square)",
               "modes: " + ", ".join(f"{m} {n}" for m, n in Counter(f.mode for f in ok).most_common())]
        for title, groups in (("exact duplicates (same bytes)", self.exact),
                              ("near duplicates (probably the same picture)", self.near)):
            extra = sum(len(g) - 1 for g in groups)
            out.append(f"{title}: {extra} extra file{'s' * (extra != 1)} in {len(groups)} group"
                       f"{'s' * (len(groups) != 1)}"
                       + (": " + "; ".join(" = ".join(p.name for p in g[:3]) for g in groups[:3]) if groups else ""))
        out.append(f"unreadable: {len(bad)}" + (": " + "; ".join(f"{f.path.name} ({f.problem})" for f in bad[:5])
                                                + (f"; {len(bad) - 5} more" if len(bad) > 5 else "") if bad else ""))
        return out


def _facts(path: Path, pixel_limit: int) -> FileFacts:
    facts = FileFacts(path)
    try:
        raw = path.read_bytes()
        facts.digest = hashlib.sha256(raw).hexdigest()
        with Image.open(path) as img:
            size = img.size
            if size[0] * size[1] > pixel_limit:
                facts.problem = f"{size[0]}x{size[1]} is over the pixel limit"
                return facts
            facts.mode = img.mode
            if img.format == "JPEG":
                img.draft(img.mode, (THUMB * 8, THUMB * 8))  # decode big JPEGs at a fraction of their size
            a = torch.from_numpy(np.ascontiguousarray(to_array(center_square(img)).mean(2)))
        t = torch.nn.functional.adaptive_avg_pool2d(a[None], THUMB).flatten().double()
        facts.thumb = ((t - t.mean()) / t.std().clamp_min(1e-3)).numpy()
        facts.size = size
    except Exception as e:  # unreadable for any reason: named, never fatal
        facts.problem = type(e).__name__ if not str(e) else str(e).splitlines()[0][:80]
    return facts


def _groups(keys: dict[int, object]) -> list[list[int]]:
    by: dict[object, list[int]] = {}
    for i, k in keys.items():
        by.setdefault(k, []).append(i)
    return [g for g in by.values() if len(g) > 1]


def _near_groups(files: list[FileFacts], exact_dupes: set[int]) -> list[list[int]]:
    """Connected groups of files whose thumbnails are within NEAR of each other (exact copies left out)."""
    idx = [i for i, f in enumerate(files) if f.thumb is not None and i not in exact_dupes]
    if len(idx) < 2:
        return []
    t = torch.from_numpy(np.stack([files[i].thumb for i in idx]))
    parent = list(range(len(idx)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for start in range(0, len(idx), 1024):
        d = torch.cdist(t[start : start + 1024], t) / THUMB  # RMS difference per pixel
        for a, b in torch.nonzero(d < NEAR).tolist():
            a += start
            if a < b:
                parent[root(a)] = root(b)
    return [[idx[j] for j in g] for g in _groups({j: root(j) for j in range(len(idx))})]


def inspect_folder(root: str | Path) -> FolderReport:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    paths = find_images(root)
    if not paths:
        raise DataError(f"no image files under {root} (looked for .png .jpg .jpeg .webp .bmp .gif .tif .tiff)")
    limit = max_pixels()
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        files = list(pool.map(lambda p: _facts(p, limit), paths))
    exact = _groups({i: f.digest for i, f in enumerate(files) if f.digest})
    extra_copies = {i for g in exact for i in g[1:]}
    near = _near_groups(files, extra_copies)
    labels, names = first_level_labels(root, paths)
    classes = dict(zip(names, torch.bincount(labels, minlength=len(names)).tolist())) if labels is not None else {}
    return FolderReport(root, files, classes,
                        [[files[i].path for i in g] for g in exact], [[files[i].path for i in g] for g in near])


def contact_sheet(report: FolderReport, path: str | Path) -> Path:
    """Up to SHEET_IMAGES readable images spread over the folder, centre-cropped, 8 per row, as one PNG."""
    from torchvision.utils import save_image

    ok = report.readable
    pick = [ok[int(i)] for i in np.linspace(0, len(ok) - 1, min(SHEET_IMAGES, len(ok)))]
    tiles = []
    for f in pick:
        with Image.open(f.path) as img:
            tile = center_square(img).convert("RGB").resize((SHEET_SIDE, SHEET_SIDE), Image.Resampling.BILINEAR)
        tiles.append(torch.from_numpy(np.asarray(tile).copy()).permute(2, 0, 1).float() / 255)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.stack(tiles), path, nrow=8, padding=2, pad_value=1.0)
    return path
