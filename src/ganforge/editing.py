"""``ganforge project``, ``directions`` and ``edit``: real images into the latent space, and edits along
meaningful directions (the methods: :mod:`ganforge.inference.inversion`, :mod:`ganforge.inference.directions`).

A projection is a folder: ``projection.png`` (target | projection), ``latent.npy`` (float32), ``noise.npz``
(a style-based generator's noise maps, where optimised), ``projection.json`` (space, class, distances, how it
was made) and ``walk.gif`` (from the start to the result). ``edit --latent DIR/latent.npy`` reads the folder's
JSON and noise maps beside the latent.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .api import Generator
from .errors import GanforgeError
from .inference.inversion import Projection
from .io import read_array, save_npy, write_json
from .runs.provenance import info_of
from .sampling import animation_target, write_frames
from .translation import inputs_of, iter_inputs


def read_images(path: Path) -> list[tuple[str, torch.Tensor]]:
    """(name, image [C, H, W] in [0, 1]) for an image file, a folder of images or an .npy of images."""
    kind, names = inputs_of(Path(path).expanduser(), "--image")
    found = list(iter_inputs(Path(path).expanduser(), kind, names, "--image"))
    bad = [name for name, img in found if img is None]
    if bad:
        raise GanforgeError(f"--image: cannot read {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} (not an "
                            "image file)")
    return [(name, img) for name, img in found]


def write_projection(g: Generator, p: Projection, out_dir: Path, source: str, settings: dict) -> Path:
    """One projection's folder (see the module text)."""
    from .runs.visuals import save_image_grid

    out_dir.mkdir(parents=True, exist_ok=True)
    info = info_of(g, source=source, space=p.space)
    save_image_grid(torch.stack([p.target, p.image]), out_dir / "projection.png", nrow=2, info=info)
    save_npy(out_dir / "latent.npy", p.latent.numpy().astype(np.float32))
    if p.noise is not None:
        np.savez(out_dir / "noise.npz", *[m.numpy().astype(np.float32) for m in p.noise])
    write_frames(p.walk, out_dir / "walk.gif", len(p.walk), info)
    write_json(out_dir / "projection.json", {"run": str(g.run_dir), "source": source, **p.info(), **settings,
                                             "loss": loss_describe(g, settings.get("pixel", 0.0))})
    return out_dir


def loss_describe(g: Generator, pixel: float) -> str:
    from .inference.perceptual import perceptual_for

    return perceptual_for(g.spec).describe + (f"; plus {pixel} x pixel MSE" if pixel else "")


def project_files(g: Generator, image: Path, out_dir: Path, space: str | None, steps: int, pixel: float,
                  noise: bool, seed: int, progress: bool = True,
                  init: str = "mean") -> list[tuple[str, Projection, Path]]:
    """``ganforge project``: every image of ``image`` (a file, a folder, an .npy) projected, each written to
    ``out_dir`` (one image) or ``out_dir/<name>/`` (several). Returns (name, projection, folder) per image."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .console import err

    found = read_images(image)
    t0 = time.perf_counter()
    with Progress(TextColumn("projecting"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TimeRemainingColumn(), console=err, disable=not progress, transient=True) as bar:
        task = bar.add_task("project", total=steps)
        results = g.project([img for _, img in found], space, steps, pixel, noise, seed,
                            progress=lambda done, total: bar.update(task, completed=done), init=init)
    seconds = time.perf_counter() - t0
    settings = {"steps": steps, "init": init, "pixel": pixel, "noise_maps_optimised": noise, "seed": seed,
                "seconds": round(seconds, 2), "images_in_batch": len(found)}
    out = []
    for (name, _), p in zip(found, results):
        folder = out_dir if len(found) == 1 else out_dir / Path(name).with_suffix("").as_posix().replace("/", "_")
        out.append((name, p, write_projection(g, p, folder, name, settings)))
    return out


def read_latent(g: Generator, path: Path) -> Projection:
    """A latent written by ``project`` (or any float .npy of the right shape) as an edit's start; the
    projection's JSON and noise maps beside it are read when present."""
    import json

    path = Path(path).expanduser()
    a = torch.from_numpy(read_array(path, "--latent", "f").astype(np.float32))
    meta_path, noise_path = path.with_name("projection.json"), path.with_name("noise.npz")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    space = meta.get("space") or _space_of(g, a)
    expected = _latent_shapes(g)
    if space not in expected or tuple(a.shape) not in expected[space]:
        allowed = "; ".join(f"{k}: {' or '.join(str(list(s)) for s in v)}" for k, v in expected.items())
        raise GanforgeError(f"--latent {str(path)!r} has shape {list(a.shape)}; this run's latents are {allowed}")
    noise = None
    if noise_path.exists() and space != "z":
        with np.load(noise_path, allow_pickle=False) as z:
            noise = [torch.from_numpy(z[k]) for k in sorted(z.files, key=lambda k: int(k.split("_")[-1]))]
    image = g.render(a[None], space, meta.get("label"), noise)[0]
    return Projection(space, a, meta.get("label"), noise, image, image, image[None], meta.get("psnr_db", float("nan")),
                      meta.get("perceptual_distance", float("nan")))


def _latent_shapes(g: Generator) -> dict[str, list[tuple[int, ...]]]:
    r = g.recipe
    z = tuple(r.latent(1, torch.Generator().manual_seed(0), torch.device("cpu")).shape[1:])
    z = (z[0] - (0 if r.conditional else r.one_hot_code), *z[1:])
    if not r.has_styles:
        return {"z": [z]}
    w_dim = g.net.mapping.w_dim
    return {"w": [(1, w_dim)], "w+": [(g.net.num_ws, w_dim)], "z": [z]}


def _space_of(g: Generator, a: torch.Tensor) -> str:
    for space, shapes in _latent_shapes(g).items():
        if tuple(a.shape) in shapes:
            return space
    return "w" if g.recipe.has_styles else "z"


def start_of(g: Generator, latent: Path | None, seed: int | None, label: int | None) -> Projection:
    if (latent is None) == (seed is None):
        raise GanforgeError("edit needs one start: --latent DIR/latent.npy (from ganforge project) or --seed S")
    if latent is not None:
        start = read_latent(g, latent)
        if label is not None:
            if not (start.space == "z" and g.recipe.conditional):
                raise GanforgeError("--label with --latent is for conditional generators without w (their class is "
                                    "an input); here move along a class-N direction")
            g.labels_for(1, label, torch.Generator())  # a one-line error for a class out of range
            start.label = int(label)
            start.image = g.render(start.latent[None], start.space, start.label)[0]
        return start
    return g.seed_latent(seed, label)


def write_edit(g: Generator, start: Projection, direction: str | None, strengths: list[float], target: Path,
               layers: str | None = None) -> Path:
    """The start moved by each strength: a .png strip, .gif, .mp4 or float32 .npy of the images (no
    direction: the start alone, as redrawn in another class)."""
    target = animation_target(target)
    x = start.image[None] if direction is None else g.edit(start, direction, strengths, layers)
    return write_frames(x, target, len(x), info_of(g, direction=direction, strengths=strengths, layers=layers))


STRENGTHS = {"class": (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0), "principal": (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)}


def write_directions(g: Generator, target: Path, seeds: list[int]) -> tuple[Path, list]:
    """Every direction applied to the samples of ``seeds`` at seven strengths (:data:`STRENGTHS`): one PNG, a
    row per direction and seed. Returns the picture and the directions."""
    from .runs.visuals import save_image_grid

    target = Path(target).expanduser()
    if target.suffix.lower() != ".png":
        raise GanforgeError(f"--out {str(target)!r}: expected FILE.png")
    found = g.directions()
    starts = [g.seed_latent(s) for s in seeds]
    rows = [g.edit(start, d, list(STRENGTHS[d.kind])) for d in found for start in starts]
    save_image_grid(torch.cat(rows), target, nrow=7,
                    info=info_of(g, directions=", ".join(d.name for d in found), seeds=seeds, strengths=str(STRENGTHS)))
    return target, found
