"""``ganforge upscale``: images and folders through a loaded :class:`~ganforge.inference.pipelines.Upscaler`
(tiling and modes: :mod:`ganforge.inference.upscaling`)."""
from __future__ import annotations

from pathlib import Path

from .errors import GanforgeError
from .inference.upscaling import TILE, tile_grid, upscale_pil


def tiles_of(size: tuple[int, int], tile: int = TILE) -> int:
    w, h = size
    return len(tile_grid(h, w, tile))


def upscale_files(upscaler, source: Path, target: Path, blend: float = 1.0, tile: int = TILE,
                  progress: bool = True) -> tuple[Path, int, list[str]]:
    """``ganforge upscale``: an image or a folder in; a PNG or a folder of PNGs (mirroring the input's
    names) out. Returns (what was written, images written, skipped names)."""
    from PIL import Image
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .console import err
    from .data.folder import find_images, max_pixels
    from .runs.provenance import info_of, save_png

    source, target = Path(source).expanduser(), Path(target).expanduser()
    if not source.exists():
        raise GanforgeError(f"--input {str(source)!r} does not exist")
    if target.exists() and target.resolve() == source.resolve():
        raise GanforgeError(f"--out {str(target)!r} would overwrite the input; choose another path")
    if source.is_dir():
        names = [str(p.relative_to(source)) for p in find_images(source)]
        if not names:
            raise GanforgeError(f"--input {str(source)!r} holds no image (png, jpg, jpeg, webp, bmp, gif, tif)")
        if target.suffix:
            raise GanforgeError(f"--out {str(target)!r}: a folder of inputs needs an output folder")
    else:
        names = [source.name]
        if target.suffix.lower() not in (".png", ""):
            raise GanforgeError(f"--out {str(target)!r}: expected FILE.png or a directory")
    outputs = {n: target / Path(n).with_suffix(".png") if source.is_dir() or not target.suffix else target
               for n in names}
    seen: dict[Path, str] = {}
    for name, out in outputs.items():
        if out in seen:
            raise GanforgeError(f"--input files {seen[out]!r} and {name!r} would both be written to {out.name}; "
                                "rename one")
        seen[out] = name
    G = upscaler.network(blend)
    skipped, written = [], 0
    columns = (TextColumn("[bold]upscale"), BarColumn(), MofNCompleteColumn(), TextColumn("tiles"),
               TimeRemainingColumn())
    with Progress(*columns, console=err, disable=not progress, transient=True) as bar:
        task = bar.add_task("upscale", total=None)
        for name in names:
            path = source / name if source.is_dir() else source
            try:
                img = Image.open(path)
                if img.size[0] * img.size[1] > max_pixels():
                    raise ValueError("over the pixel limit (GANFORGE_MAX_IMAGE_PIXELS)")
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)
                img.load()
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # what PIL raises on bad files
                skipped.append(name)
                continue
            with img:
                bar.update(task, total=(bar.tasks[0].total or 0) + tiles_of(img.size, tile))
                result = upscale_pil(G, upscaler.scale, img, tile, on_tile=lambda: bar.advance(task), mark=True)
            out = outputs[name]
            if out.resolve() == path.resolve():
                raise GanforgeError(f"{out} would overwrite its input; choose another --out")
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                save_png(result, out, info_of(upscaler, blend=blend, source=name),
                         marked=result.info["ganforge_marked"], compress_level=1)
            except OSError as e:
                raise GanforgeError(f"cannot write {out}: {e.strerror or e}") from None
            written += 1
    if not written:
        raise GanforgeError(f"no readable image in --input {str(source)!r} ({len(skipped)} unreadable: "
                            f"{', '.join(skipped[:5])})")
    return target, written, skipped
