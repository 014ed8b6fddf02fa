"""Writing samples to disk: a PNG grid, a float32 .npy array, or a folder of PNGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .api import Generator
from .errors import GanforgeError
from .extras import require
from .io import atomic_path, save_npy
from .runs.provenance import gif_comment, info_of, save_png


def write_samples(g: Generator, n: int, seed: int, target: Path, label: int | None = None,
                  truncation: float | None = None, prompt: str | None = None) -> Path:
    """Sample ``n`` and write them to ``target`` by its form; returns what was written.

    ``.npy``: float32 in data space (images [N, C, H, W] in [0, 1], points [N, D]); for a
    conditional generator the labels go beside it as ``<name>.labels.npy``.
    ``.png``: a grid (a scatter plot for points). Anything else: a directory, one PNG each.
    ``prompt``: what a text-to-image generator draws (its images carry it in their metadata).
    """
    target = Path(target).expanduser()
    suffix = target.suffix.lower()
    clips = g.spec.kind == "video"
    if clips and suffix not in (*WALK_FORMATS, ""):
        raise GanforgeError(f"--out {str(target)!r}: expected clips.gif, clips.mp4 (one animation of all clips), "
                            "clips.npy, clips.png (film strips) or a directory (one GIF per clip)")
    if not clips and suffix not in (".png", ".npy", ""):
        raise GanforgeError(f"--out {str(target)!r}: expected FILE.png, FILE.npy or a directory")
    if suffix == ".mp4":
        animation_target(target)
    if (prompt is not None) != g.recipe.texts:
        raise GanforgeError(f"--prompt is for text-to-image runs; this is a {g.recipe.cfg.recipe} run"
                            if prompt is not None else
                            f"this {g.recipe.cfg.recipe} run draws captions: give --prompt "
                            "\"a red circle left of a blue square\"")
    x, labels = g.draw(n, seed, label if prompt is None else prompt, truncation)
    if prompt is not None:
        labels, label = None, None
    extra = {"prompt": prompt} if prompt is not None else {}
    if clips:
        info = info_of(g, seed=seed, n=n, truncation=truncation, frames=x.shape[1])
        if suffix:
            return write_clips(x, target, info)
        target.mkdir(parents=True, exist_ok=True)
        for i, clip in enumerate(x):
            write_frames(clip, target / f"{i:05d}.gif", 1, {**info, "index": str(i)})
        return target
    if suffix == ".npy":
        save_npy(target, x.numpy().astype(np.float32))
        if labels is not None:
            save_npy(target.with_suffix(".labels.npy"), labels.cpu().numpy().astype(np.int64))
        return target
    if suffix == ".png":
        from .runs.visuals import save_image_grid, save_points_plot

        if g.spec.kind == "points":
            save_points_plot(x, x[:0], target, f"{n} samples")
        else:
            save_image_grid(x, target, info=info_of(g, seed=seed, n=n, label=label, truncation=truncation, **extra))
        return target
    if g.spec.kind == "points":
        raise GanforgeError("a directory of PNGs needs image samples; write 2D points to FILE.npy or FILE.png")
    target.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(x):
        name = f"{i:05d}.png" if labels is None else f"{i:05d}-class{int(labels[i])}.png"
        save_png(img, target / name, info_of(g, seed=seed, index=i, label=None if labels is None else int(labels[i]),
                                             truncation=truncation, **extra))
    return target


def write_mix(g: Generator, row_seeds: list[int], col_seeds: list[int], target: Path, layers: str | None = None,
              truncation: float | None = None, label: int | None = None) -> Path:
    """The style-mixing grid as one PNG (or float32 .npy of its cells)."""
    from .runs.visuals import save_image_grid

    target = Path(target).expanduser()
    if target.suffix.lower() not in (".png", ".npy"):
        raise GanforgeError(f"--out {str(target)!r}: expected FILE.png or FILE.npy")
    x = g.mix(row_seeds, col_seeds, layers, truncation, label)
    if target.suffix.lower() == ".npy":
        save_npy(target, x.numpy().astype(np.float32))
    else:
        save_image_grid(x, target, nrow=len(col_seeds) + 1,
                        info=info_of(g, rows=row_seeds, columns=col_seeds, layers=layers, truncation=truncation))
    return target


WALK_FORMATS = (".gif", ".mp4", ".npy", ".png")
WALK_FPS = 12


def animation_target(target: Path) -> Path:
    """``--out`` of a walk or an edit, checked before any work: .gif, .mp4 (with imageio-ffmpeg), .npy or .png."""
    target = Path(target).expanduser()
    suffix = target.suffix.lower()
    if suffix not in WALK_FORMATS:
        raise GanforgeError(f"--out {str(target)!r}: expected one of {', '.join('FILE' + s for s in WALK_FORMATS)}")
    if suffix == ".mp4":
        require("imageio_ffmpeg", "writing .mp4 (or write .gif or .npy)")
    return target


def write_walk(g: Generator, seeds: list[int], frames: int, target: Path, truncation: float | None = None,
               label: int | None = None, prompts: list[str] | None = None) -> Path:
    """A latent walk: an animated .gif, an .mp4 (needs imageio-ffmpeg), float32 .npy frames, or a .png strip.
    With ``prompts`` (text-to-image runs), a walk between their sentence embeddings at the first seed's latent."""
    target = animation_target(target)
    if prompts is not None:
        x = g.text_walk(prompts, frames, seeds[0] if seeds else 0, truncation)
    else:
        x = g.interpolate(seeds, frames, truncation, label)  # [F, C, H, W] in [0, 1]
    info = info_of(g, seeds=seeds, frames=frames, truncation=truncation,
                   prompts=None if prompts is None else " | ".join(prompts))
    if x.dim() == 5:  # clips: the walk's clips side by side, playing together
        return write_clips(x, target, info, nrow=len(x))
    return write_frames(x, target, frames, info)


def write_frames(x: torch.Tensor, target: Path, nrow: int, info: dict) -> Path:
    """Frames [F, C, H, W] in [0, 1] as an animated .gif, an .mp4 (needs imageio-ffmpeg), float32 .npy or a
    .png strip of ``nrow`` frames a row; ``info`` goes into the file's metadata (provenance)."""
    target = animation_target(target)
    suffix = target.suffix.lower()
    if suffix == ".npy":
        save_npy(target, x.numpy().astype(np.float32))
        return target
    if suffix == ".png":
        from .runs.visuals import save_image_grid

        save_image_grid(x, target, nrow=nrow, info=info)
        return target
    arr = rgb_frames(x)
    with atomic_path(target) as tmp:
        if suffix == ".gif":
            tmp.write_bytes(gif_bytes(arr, info))
        else:
            import imageio.v2 as imageio

            pad = (-arr.shape[1]) % 16  # H.264 wants sides divisible by 16 (macro blocks)
            arr = np.pad(arr, ((0, 0), (0, pad), (0, pad), (0, 0)))
            with imageio.get_writer(tmp, format="FFMPEG", fps=WALK_FPS, codec="libx264", macro_block_size=1) as w:
                for a in arr:
                    w.append_data(a)
    return target


def rgb_frames(x: torch.Tensor) -> np.ndarray:
    """Frames [F, C, H, W] in [0, 1] -> uint8 RGB [F, H', W', 3], small frames enlarged so a person can see them."""
    scale = max(1, 128 // x.shape[-1])
    x = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest") if scale > 1 else x
    arr = (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.repeat(arr, 3, axis=3) if arr.shape[3] == 1 else arr


def gif_bytes(frames: np.ndarray, info: dict) -> bytes:
    """An endlessly looping animated GIF of uint8 RGB frames [F, H, W, 3], with provenance ``info`` in its comment."""
    import io

    from PIL import Image

    pics = [Image.fromarray(a) for a in frames]
    buf = io.BytesIO()
    pics[0].save(buf, format="gif", save_all=True, append_images=pics[1:], duration=1000 // WALK_FPS, loop=0,
                 comment=gif_comment(info))
    return buf.getvalue()


def clip_grid(x: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """Clips [N, T, C, H, W] -> one animation [T, 3, H', W'] whose frame t is the grid of every clip's frame t."""
    from .runs.visuals import grid_image

    return torch.stack([grid_image(x[:, t], nrow, enlarge=False) for t in range(x.shape[1])])


def write_clips(x: torch.Tensor, target: Path, info: dict, nrow: int | None = None) -> Path:
    """Clips [N, T, C, H, W] in [0, 1]: .gif/.mp4 one animation of their grid (``nrow`` a row), .npy the array,
    .png film strips (a clip a row, frames left to right)."""
    suffix = target.suffix.lower()
    if suffix == ".npy":
        save_npy(target, x.numpy().astype(np.float32))
        return target
    if suffix == ".png":
        return write_frames(x.flatten(0, 1), target, x.shape[1], info)
    return write_frames(clip_grid(x, nrow), target, 1, info)


def synthesize(g: Generator, per_class: int, out_dir: Path, seed: int = 0, truncation: float | None = None) -> int:
    """Write a labelled synthetic image folder: ``out_dir/<class name>/<index>.png``.

    Readable back with ``folder:out_dir``. Every PNG carries its provenance in text chunks
    (``ganforge:synthetic=true``, recipe, run, seed, label; see :mod:`ganforge.runs.provenance`), so it
    is never mistaken for a real image. Returns the number of images written.
    """
    if g.spec.kind != "image":
        raise GanforgeError("synthesize writes images; this run generates 2D points (use sample --out x.npy)")
    if not g.num_classes:
        raise GanforgeError(f"synthesize needs a class-conditional run on labelled data to label its images; this "
                            f"{g.recipe.cfg.recipe} run is unconditional")
    if per_class < 1:
        raise GanforgeError(f"--per-class {per_class} is not allowed; expected an integer >= 1")
    out_dir = Path(out_dir).expanduser()
    written = 0
    for label, name in enumerate(g.spec.class_names):
        x = g.sample(per_class, seed=seed * 100_003 + label, labels=label, truncation=truncation)
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(x):
            save_png(img, folder / f"{i:05d}.png", info_of(g, seed=seed, label=label, index=i, truncation=truncation,
                                                           **{"class": name}))
            written += 1
    return written
