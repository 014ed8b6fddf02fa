"""``ganforge.evaluate``: metrics for a run's generator or for a file/folder of samples.

The reference is the real dataset's training split at the samples' resolution; the
protocol (extractor, sample counts, split, resize, seed, version) comes back with the numbers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DataRequest, load_dataset
from .errors import GanforgeError
from .io import read_array
from .metrics import default_metrics

DEFAULT_N = {"points": 2500, "image": 10_000, "video": 1024}  # VEEGAN protocol for 2D; 10k images; the test clips


def read_images(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Samples from ``.npy`` (as ``ganforge sample`` writes, with optional ``.labels.npy``) or a folder."""
    p = Path(path).expanduser()
    if p.suffix.lower() == ".npy":
        if not p.is_file():
            raise GanforgeError(f"--images {str(p)!r} does not exist")
        x = torch.from_numpy(read_array(p, "--images").astype(np.float32, copy=False))
        if x.dim() not in (2, 4) or x.shape[0] < 1:
            raise GanforgeError(f"--images {str(p)!r} has shape {list(x.shape)}; expected [N, C, H, W] images "
                                "in [0, 1] or [N, D] points")
        labels_path = p.with_suffix(".labels.npy")
        labels = None
        if labels_path.is_file():
            y = read_array(labels_path, "labels", kinds="biu")
            if y.shape != (len(x),):
                raise GanforgeError(f"labels {str(labels_path)!r} have shape {list(y.shape)}; expected [{len(x)}]")
            labels = torch.from_numpy(y.astype(np.int64))
        return x, labels
    if p.is_dir():
        from PIL import Image

        from .data.folder import find_images

        found = find_images(p)
        if not found:
            raise GanforgeError(f"--images {str(p)!r} holds no image (png, jpg, jpeg, webp, bmp, gif, tif)")
        side = None
        for f in found:  # generated sets are square and of one size: the first readable image says which
            try:
                with Image.open(f) as first:
                    side = min(first.size)
                break
            except Exception:
                continue
        if not side:
            raise GanforgeError(f"--images {str(p)!r} holds no readable image")
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
        return _evaluate_run(run_dir, data, metrics, n, features, seed, inception_weights, device, checkpoint)
    fake, file_labels = (images, labels) if torch.is_tensor(images) else read_images(images)
    labels = labels if labels is not None else file_labels
    resolution = fake.shape[-1] if fake.dim() == 4 else 16
    real = load_dataset(data or "digits", DataRequest(resolution=resolution, split="train"))
    if n is not None:
        fake, labels = fake[:n], None if labels is None else labels[:n]
    return evaluate_samples(fake, real, metrics or default_metrics(real), features=features, seed=seed,
                            requested_labels=labels, inception_weights=inception_weights)


def _evaluate_run(run_dir: str | Path, data: str | None, metrics: list[str] | str | None, n: int | None,
                  features: str | None, seed: int, inception_weights: str | None, device: str,
                  checkpoint: str) -> dict[str, Any]:
    """A run through the one measuring path training takes too (:func:`ganforge.measure.measure`)."""
    from .api import load
    from .data.run_data import RunData
    from .measure import measure

    g = load(run_dir, device=device, checkpoint=checkpoint)
    recipe = g.recipe
    if recipe.own_metrics and (metrics or features):
        raise GanforgeError(f"{run_dir} is a {recipe.cfg.recipe} run: it is measured by its own metrics "
                            f"({recipe.own_metrics}); --metrics and --features do not apply")
    run_data = RunData.of(recipe.cfg, data)
    train = run_data.train
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics or []) if m.strip()]
    names = names or default_metrics(train)
    result = measure(recipe, g.net, run_data, names, n or DEFAULT_N[train.kind], seed, features=features,
                     inception_weights=inception_weights)
    if "mem_ratio" in result:  # the picture behind the number
        from .inference.drawing import draw
        from .metrics.memorization import nearest_pairs
        from .runs.visuals import save_image_grid

        fake, _ = draw(recipe, g.net, train.spec(), n or DEFAULT_N[train.kind], seed)
        pairs = nearest_pairs(fake, train.x)  # the images the run trained on
        save_image_grid(pairs, Path(run_dir) / "memorization.png", nrow=len(pairs) // 2)
        result["protocol"]["memorization_grid"] = str(Path(run_dir) / "memorization.png")
    return result
