"""``ganforge.evaluate``: metrics for a run's generator or for a file/folder of samples.

The reference is the real dataset's training split at the samples' resolution; the
protocol (extractor, sample counts, split, resize, seed, version) comes back with the numbers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DataRequest, load_dataset, load_training_set
from .errors import GanforgeError
from .metrics import default_metrics

DEFAULT_N = {"points": 2500, "image": 10_000}  # VEEGAN protocol for 2D; 10k images


MAX_ARRAY_BYTES = 8 << 30  # an .npy declaring more than this is refused before it is read


def read_array(path: Path, what: str, kinds: str = "biuf") -> np.ndarray:
    """A numeric ``.npy`` array, never unpickled: object, string and structured arrays, damaged
    files, absurd declared sizes and NaN/Inf values are refused in one line naming the file."""
    try:
        with open(path, "rb") as f:  # the header alone says what the file holds, before any data is read
            fmt = np.lib.format
            read_header = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as e:  # pickles, garbage, empty files
        raise GanforgeError(f"{what} {str(path)!r} is not a numeric .npy array ({str(e).splitlines()[0][:120]})") \
            from None
    if dtype.kind not in kinds or dtype.fields is not None:
        raise GanforgeError(f"{what} {str(path)!r} holds {dtype} values; expected a numeric array")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise GanforgeError(f"{what} {str(path)!r} declares {nbytes} bytes of data; the limit is {MAX_ARRAY_BYTES}")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # e.g. truncated data
        raise GanforgeError(f"{what} {str(path)!r} is not a numeric .npy array ({str(e).splitlines()[0][:120]})") \
            from None
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise GanforgeError(f"{what} {str(path)!r} holds {int((~np.isfinite(a)).sum())} NaN/Inf value(s); "
                            "expected finite numbers")
    return a


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

    train_set = held_out = None
    if (run_dir is None) == (images is None):
        raise GanforgeError("give either a run directory or --images, not both or neither")
    if run_dir is not None:
        from .api import load

        g = load(run_dir, device=device, checkpoint=checkpoint)
        cfg = g.recipe.cfg
        if g.recipe.translates:  # pix2pix / CycleGAN / SR: is the output right, on held-out images
            from .metrics.translation import translation_metrics

            if metrics or features or images is not None:
                own = ("psnr, ssim, hf_ratio, hf_corr on Y, beside bicubic" if g.recipe.upscales else
                       "psnr, ssim, l1; cycle_l1, fd_ab, fd_ba, labels_kept_*")
                raise GanforgeError(f"{run_dir} is a {cfg.recipe} run: it is measured by its own metrics ({own}); "
                                    "--metrics and --features do not apply")

            if g.recipe.upscales:
                from .metrics.superres import run_metrics

                return run_metrics(g.recipe, g.net, data or cfg.data)
            request = DataRequest(cfg.resolution, cfg.channels, cfg.data_root)
            train, test = load_training_set(data or cfg.data, request, cfg.data_fraction, cfg.seed)
            return translation_metrics(g.recipe, g.net, train, test, seed)
        real = load_dataset(data or cfg.data, DataRequest(cfg.resolution, cfg.channels, cfg.data_root, "train"))
        fake, labels = g.draw(n or DEFAULT_N[real.kind], seed)
        asked = metrics if isinstance(metrics, list) else str(metrics or "").split(",")
        if "memorization" in [m.strip() for m in asked]:
            request = DataRequest(cfg.resolution, cfg.channels, cfg.data_root)
            train_set, held_out = load_training_set(data or cfg.data, request, cfg.data_fraction, cfg.seed)
    else:
        fake, file_labels = (images, labels) if torch.is_tensor(images) else read_images(images)
        labels = labels if labels is not None else file_labels
        resolution = fake.shape[-1] if fake.dim() == 4 else 16
        real = load_dataset(data or "digits", DataRequest(resolution=resolution, split="train"))
        if n is not None:
            fake, labels = fake[:n], None if labels is None else labels[:n]
    names = metrics or default_metrics(real)
    result = evaluate_samples(fake, real, names, features=features, seed=seed, requested_labels=labels,
                              inception_weights=inception_weights, train_set=train_set, held_out=held_out)
    if run_dir is not None and "mem_ratio" in result:  # the picture behind the number
        from .metrics.memorization import nearest_pairs
        from .train.visuals import save_image_grid

        pairs = nearest_pairs(fake, (train_set or real).x)
        save_image_grid(pairs, Path(run_dir) / "memorization.png", nrow=len(pairs) // 2)
        result["protocol"]["memorization_grid"] = str(Path(run_dir) / "memorization.png")
    return result
