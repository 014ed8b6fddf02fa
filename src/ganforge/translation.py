"""``ganforge translate``: images, folders and .npy files through a loaded ``Translator``
(how an image is fitted to the model: :mod:`ganforge.inference.tiling`)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import GanforgeError
from .inference.tiling import default_fit, tile_count, translate_images
from .io import read_array, save_npy


def inputs_of(path: Path, option: str = "--input") -> tuple[str, list[str]]:
    """What ``--input`` (or ``option``) is: ("image", [file]) | ("folder", [relative files]) | ("npy", [file])."""
    from .data.folder import find_images

    if not path.exists():
        raise GanforgeError(f"{option} {str(path)!r} does not exist")
    if path.is_dir():
        found = find_images(path)
        if not found:
            raise GanforgeError(f"{option} {str(path)!r} holds no image (png, jpg, jpeg, webp, bmp, gif, tif)")
        return "folder", [str(p.relative_to(path)) for p in found]
    if path.suffix.lower() == ".npy":
        return "npy", [path.name]
    return "image", [path.name]


def iter_inputs(path: Path, kind: str, names: list[str],
                option: str = "--input") -> Iterator[tuple[str, torch.Tensor | None]]:
    """(name, image [C, H, W] or None when unreadable) for each input (``option``: its flag, for errors)."""
    if kind == "npy":
        a = torch.from_numpy(read_array(path, option).astype(np.float32, copy=False))
        if a.dim() == 3:
            a = a[:, None]
        if a.dim() != 4 or a.shape[1] not in (1, 2, 3, 4):
            raise GanforgeError(f"{option} {str(path)!r} has shape {list(a.shape)}; expected images [N, C, H, W] "
                                "(or [N, H, W]) with values in [0, 1]")
        for i, img in enumerate(a):
            yield f"{i:05d}", img
        return
    from .data.translation import read_image
    from .errors import DataError

    for name in names:
        try:
            yield name, read_image(path / name if kind == "folder" else path)
        except DataError:
            yield name, None


IMAGE_OUT = (".png",)


def translate_files(translator, source: Path, target: Path, direction: str = "AtoB", fit: str | None = None,
                    progress: bool = True) -> tuple[Path, int, list[str]]:
    """``ganforge translate``: an image, a folder or an .npy in; a PNG, a folder of PNGs (mirroring
    the input's names) or a float32 .npy out. Returns (what was written, images written, skipped names).

    Unreadable files of a folder are skipped and listed; the rest are translated.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .console import err
    from .runs.provenance import info_of, save_png

    source, target = Path(source).expanduser(), Path(target).expanduser()
    kind, names = inputs_of(source)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".npy", ""):
        raise GanforgeError(f"--out {str(target)!r}: expected FILE.png, FILE.npy or a directory")
    if target.resolve() == source.resolve():
        raise GanforgeError(f"--out {str(target)!r} would overwrite the input; choose another path")
    translator.recipe.check_direction(direction)
    fit = fit or default_fit(translator.spec)
    results: list[tuple[str, torch.Tensor]] = []
    skipped: list[str] = []
    columns = (TextColumn("[bold]translate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=not progress, transient=True) as bar:
        task = bar.add_task("translate", total=len(names) if kind != "image" else None)
        for name, img in iter_inputs(source, kind, names):
            if img is None:
                skipped.append(name)
                continue
            if kind == "image" and fit == "tile":  # one big image: the bar counts its tiles
                bar.update(task, total=tile_count(img.shape[-2], img.shape[-1], translator.spec.shape[-1]))
                out = translate_images(translator.recipe, translator.net, translator.spec, [img], direction, fit,
                                       on_tiles=lambda k: bar.advance(task, k))[0]
            else:
                out = translate_images(translator.recipe, translator.net, translator.spec, [img], direction, fit)[0]
                bar.advance(task)
            results.append((name, out))
    if not results:
        raise GanforgeError(f"no readable image in --input {str(source)!r} ({len(skipped)} unreadable: "
                            f"{', '.join(skipped[:5])})")
    if suffix in (".npy", ".png") and len({tuple(r.shape) for _, r in results}) > 1:
        raise GanforgeError(f"the {len(results)} translations differ in size (tiled at their own scale); write "
                            "them to a directory, or use --fit resize")
    if suffix == ".npy":
        save_npy(target, torch.stack([r for _, r in results]).numpy().astype(np.float32))
    elif suffix == ".png" and len(results) > 1:
        from .runs.visuals import save_image_grid

        save_image_grid(torch.stack([r for _, r in results]), target, info=info_of(translator, direction=direction))
    else:
        for name, r in results:
            path = target if suffix == ".png" else target / Path(name).with_suffix(".png")
            save_png(r, path, info_of(translator, direction=direction, source=name))
    return target, len(results), skipped
