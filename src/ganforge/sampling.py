"""Writing samples to disk: a PNG grid, a float32 .npy array, or a folder of PNGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .api import Generator
from .errors import GanforgeError
from .io import atomic_path


def write_samples(g: Generator, n: int, seed: int, target: Path, label: int | None = None,
                  truncation: float | None = None) -> Path:
    """Sample ``n`` and write them to ``target`` by its form; returns what was written.

    ``.npy``: float32 in data space (images [N, C, H, W] in [0, 1], points [N, D]); for a
    conditional generator the labels go beside it as ``<name>.labels.npy``.
    ``.png``: a grid (a scatter plot for points). Anything else: a directory, one PNG each.
    """
    target = Path(target).expanduser()
    suffix = target.suffix.lower()
    if suffix not in (".png", ".npy", ""):
        raise GanforgeError(f"--out {str(target)!r}: expected FILE.png, FILE.npy or a directory")
    x, labels = g.draw(n, seed, label, truncation)
    if suffix == ".npy":
        with atomic_path(target) as tmp:
            np.save(tmp, x.numpy().astype(np.float32), allow_pickle=False)
        if labels is not None:
            with atomic_path(target.with_suffix(".labels.npy")) as tmp:
                np.save(tmp, labels.cpu().numpy().astype(np.int64), allow_pickle=False)
        return target
    if suffix == ".png":
        from .train.visuals import save_image_grid, save_points_plot

        if g.spec.kind == "points":
            save_points_plot(x, x[:0], target, f"{n} samples")
        else:
            save_image_grid(x, target)
        return target
    if g.spec.kind == "points":
        raise GanforgeError("a directory of PNGs needs image samples; write 2D points to FILE.npy or FILE.png")
    from torchvision.utils import save_image

    target.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(x):
        name = f"{i:05d}.png" if labels is None else f"{i:05d}-class{int(labels[i])}.png"
        with atomic_path(target / name) as tmp:
            save_image(img, str(tmp), format="png")
    return target
