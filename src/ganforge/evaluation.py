"""``ganforge.evaluate``: metrics for a run's generator or for a file/folder of samples.

The reference is the real dataset's training split at the samples' resolution; the
protocol (extractor, sample counts, split, resize, seed, version) comes back with the numbers.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DataRequest, Dataset, load_dataset
from .errors import GanforgeError

# Metric keys where larger is better (the rest: smaller is better), for "best" checkpoints.
HIGHER_IS_BETTER = {"precision", "recall", "density", "coverage", "class_confident", "classes_present",
                    "label_agreement", "modes", "hq_frac", "is_mean"}
DEFAULT_N = {"points": 2500, "image": 10_000}  # VEEGAN protocol for 2D; 10k images


def default_metrics(data: Dataset) -> list[str]:
    if data.kind == "points":
        return ["modes", "fd"] if "means" in data.info else ["fd", "prdc"]
    from .metrics.evaluate import CLASSIFIER_DATASETS

    return ["fd", "kid", "prdc"] + (["classes"] if data.name in CLASSIFIER_DATASETS else [])


def read_images(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Samples from ``.npy`` (as ``ganforge sample`` writes, with optional ``.labels.npy``) or a folder."""
    p = Path(path).expanduser()
    if p.suffix.lower() == ".npy":
        if not p.is_file():
            raise GanforgeError(f"--images {str(p)!r} does not exist")
        try:
            x = torch.from_numpy(np.load(p, allow_pickle=False)).float()
        except ValueError as e:
            raise GanforgeError(f"--images {str(p)!r} is not a numeric .npy array: {e}") from None
        if x.dim() not in (2, 4):
            raise GanforgeError(f"--images {str(p)!r} has shape {list(x.shape)}; expected [N, C, H, W] images "
                                "in [0, 1] or [N, D] points")
        labels_path = p.with_suffix(".labels.npy")
        labels = torch.from_numpy(np.load(labels_path, allow_pickle=False)).long() if labels_path.is_file() else None
        return x, labels
    if p.is_dir():
        from PIL import Image

        from .data.folder import find_images

        found = find_images(p)
        if not found:
            raise GanforgeError(f"--images {str(p)!r} holds no image (png, jpg, jpeg, webp, bmp)")
        with Image.open(found[0]) as first:
            side = min(first.size)  # generated sets are square and of one size
        return load_dataset(f"folder:{p}", DataRequest(resolution=side, split="all")).x, None
    raise GanforgeError(f"--images {str(p)!r}: expected a .npy file or a folder of images")


def evaluate(run_dir: str | Path | None = None, images: str | Path | torch.Tensor | None = None,
             data: str | None = None, metrics: list[str] | str | None = None, n: int | None = None,
             features: str | None = None, seed: int = 0, inception_weights: str | None = None,
             labels: torch.Tensor | None = None, device: str = "cpu", checkpoint: str = "latest") -> dict[str, Any]:
    """Evaluate a run's generator (EMA weights when present) or given samples; returns a flat dict.

    ``images``: a tensor in data space, a ``.npy`` path or a folder. ``data``: the real
    dataset (default: the run's, or ``digits``). ``n``: samples drawn from a run (default
    2,500 for 2D points, 10,000 for images).
    """
    from .metrics import evaluate_samples

    if (run_dir is None) == (images is None):
        raise GanforgeError("give either a run directory or --images, not both or neither")
    if run_dir is not None:
        from .api import load

        g = load(run_dir, device=device, checkpoint=checkpoint)
        cfg = g.recipe.cfg
        real = load_dataset(data or cfg.data, DataRequest(cfg.resolution, cfg.channels, cfg.data_root, "train"))
        fake, labels = g.draw(n or DEFAULT_N[real.kind], seed)
    else:
        fake, file_labels = (images, labels) if torch.is_tensor(images) else read_images(images)
        labels = labels if labels is not None else file_labels
        resolution = fake.shape[-1] if fake.dim() == 4 else 16
        real = load_dataset(data or "digits", DataRequest(resolution=resolution, split="train"))
        if n is not None:
            fake, labels = fake[:n], None if labels is None else labels[:n]
    names = metrics or default_metrics(real)
    return evaluate_samples(fake, real, names, features=features, seed=seed, requested_labels=labels,
                            inception_weights=inception_weights)


def is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None or (isinstance(best, float) and math.isnan(best)):
        return not math.isnan(value)
    return value > best if metric in HIGHER_IS_BETTER else value < best
