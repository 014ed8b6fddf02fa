"""``ganforge compare``: GANs, VAEs and diffusion models measured by one protocol, side by side.

For every run (and, for diffusion runs, every sampler asked for) the same reference data, feature
extractor, sample count and seed give quality and diversity (fd, kid, precision, recall, density,
coverage, and the digits classifier's view on digits); the same device gives sampling speed (warm:
milliseconds per image at batch 1, images per second at batch 256); the run's own counters give
its training cost (wall and CPU seconds, peak memory) and parameter counts. Several runs of one
recipe add the spread of their quality over seeds. The result is a Markdown table, JSON and a
picture with one row of samples per run.

Timing an iterative sampler at full length would dominate the command (a diffusion model's 1,000 steps at
batch 256 take minutes on a CPU), and every denoising step is the same network evaluation, so a
diffusion sampler is timed over ``PROBE_STEPS`` steps and scaled to its full length; the protocol
card says so.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .data import DataRequest
from .data.base import load_training_set
from .errors import GanforgeError
from .version import __version__

SPEED_BATCH = 256
PROBE_STEPS = 10  # denoising steps timed for an iterative sampler, scaled to its length
BATCH1_REPEATS = 5
GRID_COLUMNS = 16
QUALITY_KEYS = ["fd", "kid_mean", "precision", "recall", "density", "coverage", "class_confident",
                "classes_present", "mem_ratio", "mem_copies"]
STABILITY_KEYS = ["fd", "precision", "recall", "coverage", "class_confident"]


@dataclass
class Entry:
    """One row: a run, sampled one way."""

    run: Path
    generator: Any  # api.Generator
    sampler: str | None  # ddim-50 for diffusion rows, None for one-pass generators
    row: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run.name + (f" ({self.sampler})" if self.sampler else "")


def sampler_names() -> list[str]:
    """The iterative samplers any recipe offers (``Recipe.samplers``)."""
    from .recipes import RECIPES, recipe_class

    return sorted({s for name in RECIPES.list() for s in recipe_class(name).samplers})


def parse_samplers(text: str) -> list[tuple[str, int]]:
    """``SAMPLER-STEPS,...`` -> [(sampler, steps), ...]: ``ddim-50`` -> [("ddim", 50)]."""
    names = sampler_names()
    example = ",".join(f"{n}-{50 * 20 ** i}" for i, n in enumerate(names[:2]))
    out = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        name, _, steps = part.partition("-")
        if name not in names or not steps.isdigit() or int(steps) < 1:
            raise GanforgeError(f"--samplers {part!r} is not allowed; expected SAMPLER-STEPS with SAMPLER "
                                f"{' or '.join(names)}, e.g. {example}")
        out.append((name, int(steps)))
    if not out:
        raise GanforgeError(f"--samplers is empty; expected e.g. {example}")
    return out


def _entries(runs: list[Path], samplers: list[tuple[str, int]], device: str) -> list[Entry]:
    from .api import load

    entries = []
    for run in runs:
        g = load(run, device=device)
        if g.kind != "sampler":
            raise GanforgeError(f"{run} is a {g.recipe.cfg.recipe} run; compare measures generators that sample "
                                "from noise (GANs, autoencoders, diffusion), not translators or upscalers")
        if g.recipe.sampler_name is None:
            entries.append(Entry(Path(run), g, None))
            continue
        for i, (name, steps) in enumerate(samplers):  # one loaded copy per sampler (a sampler is recipe state)
            h = (g if i == 0 else load(run, device=device)).with_sampler(name, steps)
            entries.append(Entry(Path(run), h, h.recipe.sampler_name))
    return entries


def _check_common_data(entries: list[Entry], data: str | None) -> None:
    """One reference for all: runs of different sizes are refused; of different data, unless ``data`` names one."""
    first = entries[0].generator
    for e in entries[1:]:
        g = e.generator
        a = (first.recipe.cfg.data, list(first.spec.shape))
        b = (g.recipe.cfg.data, list(g.spec.shape))
        if a[1] != b[1]:
            raise GanforgeError(f"{entries[0].run} makes images of {a[1]} but {e.run} of {b[1]}; compare measures "
                                "runs of one size against one reference")
        if a[0] != b[0] and data is None:
            raise GanforgeError(f"{entries[0].run} was trained on {a[0]} but {e.run} on {b[0]}; compare measures "
                                "runs against one reference: give --data NAME to choose it")


def _seconds(fn, repeats: int = 1) -> float:
    """Median wall seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sampling_speed(g, seed: int = 0) -> dict[str, float]:
    """Warm sampling speed: ms per image at batch 1 and images per second at batch ``SPEED_BATCH``."""
    recipe = g.recipe
    full = recipe.sample_steps if recipe.sampler_name else None
    scale = 1.0
    if full is not None and full > PROBE_STEPS:
        recipe.set_sampler(recipe.sampler, PROBE_STEPS)
        scale = full / PROBE_STEPS
    labels = 0 if g.num_classes else None
    try:
        with torch.inference_mode():
            one = _seconds(lambda: g.sample(1, seed=seed, labels=labels), BATCH1_REPEATS) * scale
            many = _seconds(lambda: g.sample(SPEED_BATCH, seed=seed, labels=labels, batch_size=SPEED_BATCH)) * scale
    finally:
        if full is not None:
            recipe.set_sampler(recipe.sampler, full)
    return {"ms_per_image_b1": one * 1000, "images_per_s_b256": SPEED_BATCH / many}


def training_cost(g) -> dict[str, Any]:
    """What training the run cost, from its latest checkpoint's counters and run.json."""
    import json

    from .runs import checkpoint as ck

    state = ck.load_state(ck.latest_checkpoint(g.run_dir))["counters"]
    meta = json.loads((g.run_dir / "run.json").read_text())
    nets = g.recipe.nets
    return {"steps": int(state["step"]), "train_wall_s": float(state["seconds"]),
            "train_cpu_s": float(state["cpu_seconds"]) if "cpu_seconds" in state else None,
            "peak_memory_mb": float(state["peak_memory_mb"]) if "peak_memory_mb" in state else None,
            "train_device": meta.get("device", "unknown"), "world_size": meta.get("world_size", 1),
            "params_sampling": sum(p.numel() for p in g.recipe.sampling_network(g.net).parameters()),
            "params_trained": sum(p.numel() for net in nets.values() for p in net.parameters())}


def stability(entries: list[Entry]) -> list[dict[str, Any]]:
    """Mean and standard deviation of the quality numbers over the runs of each recipe (and sampler)."""
    groups: dict[str, list[dict]] = {}
    for e in entries:
        key = e.row["recipe"] + (f" ({e.sampler})" if e.sampler else "")
        groups.setdefault(key, []).append(e.row)
    out = []
    for key, rows in groups.items():
        if len(rows) < 2:
            continue
        item: dict[str, Any] = {"group": key, "runs": len(rows)}
        for k in STABILITY_KEYS:
            values = [r[k] for r in rows if isinstance(r.get(k), (int, float))]
            if len(values) == len(rows):
                item[k] = {"mean": statistics.fmean(values), "std": statistics.stdev(values)}
        out.append(item)
    return out


def sample_strip(entries: list[Entry], path: Path, seed: int) -> None:
    """One row of ``GRID_COLUMNS`` samples per entry, its name on the left (digits in label order when conditional)."""
    from PIL import Image, ImageDraw, ImageFont
    from torchvision.utils import make_grid

    from .io import atomic_path

    rows = []
    for e in entries:
        g = e.generator
        labels = torch.arange(GRID_COLUMNS) % g.num_classes if g.num_classes else None
        x = g.sample(GRID_COLUMNS, seed=seed, labels=labels).float().clamp(0, 1)
        scale = max(1, 48 // x.shape[-1])
        x = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest") if scale > 1 else x
        strip = make_grid(x.expand(-1, 3, -1, -1), nrow=GRID_COLUMNS, padding=2, pad_value=0.5)
        rows.append((e.name, Image.fromarray((strip.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8"))))
    font = ImageFont.load_default(14)
    label_w = 12 + max(int(ImageDraw.Draw(rows[0][1]).textlength(name, font=font)) for name, _ in rows)
    width, height = label_w + rows[0][1].width, sum(im.height for _, im in rows)
    canvas = Image.new("RGB", (width, height), "white")
    draw, y = ImageDraw.Draw(canvas), 0
    for name, im in rows:
        draw.text((6, y + im.height // 2 - 8), name, fill="black", font=font)
        canvas.paste(im, (label_w, y))
        y += im.height
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="png")


def compare(runs: list[str | Path], data: str | None = None, n: int = 1000, seed: int = 0,
            samplers: str = "ddim-50", device: str = "cpu", grid: str | Path | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Measure ``runs`` by one protocol; returns {"rows", "stability", "protocol"} (and writes ``grid``)."""
    from rich.progress import track

    from .metrics import default_metrics, evaluate_samples

    if not runs:
        raise GanforgeError("compare needs at least one run directory")
    if n < 10:
        raise GanforgeError(f"--n {n} is not allowed; expected an integer >= 10")
    if not (device == "cpu" or device == "cuda" or device.startswith("cuda:")):
        raise GanforgeError(f"--device {device!r} is not allowed; expected cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GanforgeError(f"--device {device} but CUDA is not available on this machine; use --device cpu")
    entries = _entries([Path(r).expanduser() for r in runs], parse_samplers(samplers), device)
    _check_common_data(entries, data)
    references: dict[tuple, Any] = {}
    t_start = time.perf_counter()
    for e in track(entries, description="comparing", transient=True, disable=not progress):
        g, cfg = e.generator, e.generator.recipe.cfg
        key = (data or cfg.data, cfg.resolution, cfg.channels)
        if key not in references:
            real, held = load_training_set(key[0], DataRequest(cfg.resolution, cfg.channels, cfg.data_root, "train"),
                                           1.0, 0)  # the whole train split; its test split when it has one
            references[key] = real, held if real.kind == "image" else None
        real, held = references[key]
        t0 = time.perf_counter()
        with torch.inference_mode():
            fake, labels = g.draw(n, seed)
        draw_s = time.perf_counter() - t0
        names = default_metrics(real) + (["memorization"] if held is not None else [])
        quality = evaluate_samples(fake, real, names, seed=seed, requested_labels=labels, train_set=real,
                                   held_out=held)
        protocol = quality.pop("protocol")
        e.row = {"run": str(e.run), "name": e.name, "recipe": cfg.recipe, "sampler": e.sampler or "one pass",
                 "seed": cfg.seed, **{k: quality[k] for k in QUALITY_KEYS if k in quality},
                 **sampling_speed(g, seed), f"draw_{n}_s": draw_s, **training_cost(g)}
        e.row["_protocol"] = protocol
    first = entries[0].row.pop("_protocol")
    for e in entries[1:]:
        e.row.pop("_protocol")
    if grid is not None:
        sample_strip(entries, Path(grid), seed)
    threads = torch.get_num_threads()
    return {"rows": [e.row for e in entries], "stability": stability(entries), "protocol": {
        "reference": first.get("reference"), "n_fake": n, "n_real": first.get("n_real"),
        "extractor": first.get("extractor"), "seed": seed, "device": device, "threads": threads,
        "speed": f"warm; batch 1: median of {BATCH1_REPEATS}; batch {SPEED_BATCH}: one call after a warm-up; "
                 f"iterative samplers timed over {PROBE_STEPS} steps and scaled to their length",
        "ganforge_version": __version__, "seconds": round(time.perf_counter() - t_start, 1),
        **({"grid": str(grid)} if grid is not None else {})}}


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def markdown(result: dict[str, Any]) -> str:
    """The comparison as Markdown: quality, speed and cost tables, the stability table, the protocol card."""
    rows, p = result["rows"], result["protocol"]
    quality = [("fd", "fd"), ("kid_mean", "kid"), ("precision", "precision"), ("recall", "recall"),
               ("density", "density"), ("coverage", "coverage"), ("class_confident", "confident"),
               ("classes_present", "classes")]
    quality = [(k, h) for k, h in quality if any(k in r for r in rows)]
    lines = ["## Quality and diversity", "", "| run | recipe | sampler | " + " | ".join(h for _, h in quality) + " |",
             "| --- | --- | --- |" + " --- |" * len(quality)]
    lines += [f"| {r['name']} | {r['recipe']} | {r['sampler']} | " + " | ".join(_fmt(r.get(k)) for k, _ in quality)
              + " |" for r in rows]
    lines += ["", "## Sampling speed and training cost", "",
              "| run | ms / image (batch 1) | images / s (batch 256) | train wall s | train CPU s | peak memory MiB "
              "| params (sampling) | params (trained) |", "| --- |" + " --- |" * 7]
    lines += [f"| {r['name']} | {_fmt(r['ms_per_image_b1'])} | {_fmt(r['images_per_s_b256'])} | "
              f"{_fmt(r['train_wall_s'], 4)} | {_fmt(r['train_cpu_s'], 4)} | {_fmt(r['peak_memory_mb'], 4)} | "
              f"{r['params_sampling']:,} | {r['params_trained']:,} |" for r in rows]
    if result["stability"]:
        keys = [k for k in STABILITY_KEYS if any(k in s for s in result["stability"])]
        lines += ["", "## Spread over seeds (mean +- standard deviation)", "",
                  "| recipe | runs | " + " | ".join(keys) + " |", "| --- | --- |" + " --- |" * len(keys)]
        for s in result["stability"]:
            cells = [f"{s[k]['mean']:.3g} +- {s[k]['std']:.2g}" if k in s else "-" for k in keys]
            lines.append(f"| {s['group']} | {s['runs']} | " + " | ".join(cells) + " |")
    lines += ["", f"Protocol: {p['n_fake']} samples per row (seed {p['seed']}) against {p['n_real']} images of "
              f"the {p['reference']}, features: {p['extractor']}; speed on {p['device']} with {p['threads']} "
              f"threads, {p['speed']}; training cost from each run's own counters; ganforge "
              f"{p['ganforge_version']}."]
    if p.get("grid"):
        lines += ["", f"![one row of samples per run]({Path(p['grid']).name})"]
    return "\n".join(lines) + "\n"
