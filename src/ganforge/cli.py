"""The command line: ``ganforge train | distill | sample | mix | interpolate | translate | upscale | synthesize | eval
| compare | report | demo | serve | export | verify | data | list``
(thin: parse, call the API).

Every user error is one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.markup import escape

try:  # typer >= 0.25 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as click_exc

from .console import err, out
from .errors import GanforgeError


def _sampler_names() -> str:
    from .compare import sampler_names

    return " or ".join(sampler_names())


_SAMPLERS = _sampler_names()  # named by the recipes that offer them

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, sample and evaluate Generative Adversarial Networks.")


def _print_version(value: bool) -> None:
    if value:
        from .version import __version__

        out.print(f"ganforge {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    no_watermark: bool = typer.Option(False, "--no-watermark", help="Write images without the invisible watermark "
                                      "(provenance metadata stays); also GANFORGE_WATERMARK=0."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Train, sample and evaluate Generative Adversarial Networks."""
    from .runs.provenance import set_watermarking

    set_watermarking(False if no_watermark else None)


@app.command()
def train(
    recipe: str | None = typer.Option(None, help="Method (ganforge list recipes); default: the data's own "
                                                 "(conditional on labelled digits, conditional on clusters or "
                                                 "classes for a folder, an MLP GAN for 2D points, a convolutional "
                                                 "GAN for other images)."),
    data: str | None = typer.Option(
        None, help="Dataset: see ganforge list datasets; ring:K:R:STD, grid:K:S:STD, folder:PATH."),
    steps: int | None = typer.Option(None, help="Total training steps."),
    batch_size: int | None = typer.Option(None, help="Global batch size."),
    resolution: int | None = typer.Option(None, help="Image side in pixels."),
    seed: int | None = typer.Option(None, help="Random seed."),
    out_dir: str | None = typer.Option(None, "--out", help="Run directory (default runs/NNNN-<recipe>-<data>)."),
    config: Path | None = typer.Option(None, help="YAML file of config keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set optim.lr_g=1e-4 (repeatable)."),
    checkpoint_every: int | None = typer.Option(None, help="Steps between checkpoints."),
    resume: Path | None = typer.Option(None, help="Continue this run directory (with --steps: the new total)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    init_from: str | None = typer.Option(None, help="Fine-tune: start from this run's networks (a run directory "
                                         "or pretrained:NAME); its recipe, resolution and net settings by default."),
    freeze_d: int | None = typer.Option(None, help="With --init-from: keep D's first N weight layers frozen "
                                        "(FreezeD)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit."),
) -> None:
    """Train a GAN; writes a run directory with checkpoints, logs, sample grids and a report."""
    from .config import read_yaml, to_yaml
    from .recipes import resolve
    from .runs.rundir import read_run

    flags = dict(recipe=recipe, data=data, steps=steps, batch_size=batch_size, resolution=resolution, seed=seed,
                 out=out_dir, checkpoint_every=checkpoint_every, device=device, init_from=init_from,
                 freeze_d=freeze_d)
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    if resume is None and restarts and out_dir and (Path(out_dir).expanduser() / "checkpoints").is_dir():
        resume = Path(out_dir).expanduser()  # torchrun restarted the workers: continue, do not start over
        flags, config, set_ = {"steps": steps, "device": device}, None, []
    if resume is not None:
        extra = [k for k, v in flags.items() if v is not None and k not in ("steps", "device")]
        if extra or config or set_:
            raise GanforgeError("--resume continues a run with its saved config; only --steps and --device may change")
        _, cfg, _ = read_run(resume)
        cfg.steps = steps or cfg.steps
        cfg.device = device or cfg.device
    else:
        cfg = resolve(read_yaml(config) if config else {}, flags, set_)
    if dry_run:
        out.print(to_yaml(cfg), end="", markup=False)
        return
    from .train.trainer import train as run_training

    run_dir = run_training(cfg, resume=resume)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks
        out.print(f"run directory: {run_dir}")


@app.command()
def distill(
    teacher: str = typer.Argument(..., help="The run to distil (a run directory or pretrained:NAME)."),
    width: float = typer.Option(0.5, help="The student generator's channels as a fraction of the teacher's."),
    steps: int | None = typer.Option(None, help="Training steps (default: the teacher's)."),
    seed: int | None = typer.Option(None, help="Random seed (default: the teacher's)."),
    out_dir: str | None = typer.Option(None, "--out", help="The student's run directory (default runs/NNNN-...)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set distill.pixel=5 (repeatable)."),
) -> None:
    """Train a lighter generator from a trained run (knowledge distillation); the student is a normal run."""
    from .train.distill import student_config
    from .train.trainer import train as run_training

    cfg = student_config(teacher, width, set_, steps=steps, seed=seed, out=out_dir, device=device)
    run_dir = run_training(cfg)
    if os.environ.get("RANK", "0") == "0":
        from .runs.rundir import read_meta

        made = read_meta(run_dir).get("distilled_from", {})
        t, s = made.get("teacher_cost"), made.get("student_cost")
        if t and s:
            out.print(f"generator: {s['macs'] / 1e6:.3g} M multiply-adds and {s['params'] / 1e3:.3g} k parameters "
                      f"per image, teacher {t['macs'] / 1e6:.3g} M and {t['params'] / 1e3:.3g} k "
                      f"({t['macs'] / s['macs']:.1f}x fewer multiply-adds)", markup=False)
        out.print(f"run directory: {run_dir}")


@app.command()
def sample(
    run_dir: Path = typer.Argument(..., help="A run directory, or pretrained:NAME (ganforge list pretrained)."),
    n: int = typer.Option(64, help="Number of samples."),
    seed: int = typer.Option(0, help="Random seed."),
    out_path: Path | None = typer.Option(None, "--out", help="FILE.png (grid), FILE.npy (float32 array) or a DIR."),
    label: int | None = typer.Option(None, help="Class to generate (conditional runs)."),
    prompt: str | None = typer.Option(None, help="What to draw (text-to-image runs): 'a red circle left of a "
                                                 "blue square'."),
    truncation: float | None = typer.Option(None, help="Truncation psi: trade variety for fidelity (in z: > 0; "
                                                        "style-based, in w: 1 none, 0 the average image)."),
    sampler: str | None = typer.Option(None, help=f"Diffusion runs: the sampler ({_SAMPLERS}); default the "
                                                  "run's."),
    steps: int | None = typer.Option(None, help="Diffusion runs: denoising steps (default the run's, 50; the "
                                               "ancestral sampler: up to the 1,000 it was trained with)."),
    frames: int | None = typer.Option(None, help="Video runs: frames per clip (default as trained; longer clips "
                                                 "continue the motion)."),
) -> None:
    """Draw samples from a trained generator (video runs: clips, as clips.gif, clips.mp4, clips.npy or film strips)."""
    from .sampling import write_samples

    g = _sampler(run_dir).with_sampler(sampler, steps).with_frames(frames)
    g.recipe.progress = True
    target = out_path or Path(run_dir) / "samples" / (f"sample-seed{seed}" + (".gif" if g.spec.kind == "video"
                                                                               else ".png"))
    written = write_samples(g, n, seed, target, label, truncation, prompt)
    out.print(f"wrote {written}")


@app.command()
def mix(
    run_dir: Path = typer.Argument(..., help="A run of a style-based generator."),
    row_seeds: str = typer.Option(..., help="Seeds of the rows: 1,2,3 or 1-5."),
    col_seeds: str = typer.Option(..., help="Seeds of the columns, whose styles are mixed in."),
    out_path: Path = typer.Option(..., "--out", help="FILE.png (grid) or FILE.npy."),
    layers: str | None = typer.Option(None, help="Styles taken from the columns: coarse (default), middle, fine, "
                                                  "A-B or a,b,c."),
    truncation: float | None = typer.Option(None, help="Truncation psi: 1 none, 0 the average image."),
    label: int | None = typer.Option(None, help="Class (conditional runs; default: each seed's own)."),
) -> None:
    """The style-mixing grid of the StyleGAN paper (style-based generators)."""
    from .inference.control import parse_seeds
    from .sampling import write_mix

    rows, cols = parse_seeds(row_seeds, "--row-seeds"), parse_seeds(col_seeds, "--col-seeds")
    out.print(f"wrote {write_mix(_sampler(run_dir), rows, cols, out_path, layers, truncation, label)}")


@app.command()
def interpolate(
    run_dir: Path = typer.Argument(..., help="A run directory, or pretrained:NAME (ganforge list pretrained)."),
    seeds: str | None = typer.Option(None, help="Seeds to walk through in order: 1,2,3 (text-to-image: the "
                                                "latent, default 0)."),
    frames: int = typer.Option(16, help="Frames per segment between two seeds."),
    out_path: Path = typer.Option(..., "--out", help="walk.gif, walk.mp4, walk.npy (float32) or walk.png (strip)."),
    truncation: float | None = typer.Option(None, help="Truncation psi."),
    label: int | None = typer.Option(None, help="Class along the walk (conditional runs; default the first seed's)."),
    prompts: str | None = typer.Option(None, help="Text-to-image runs: prompts to walk between, 'A|B|C'."),
) -> None:
    """A latent walk between seeds (in w for style-based generators, spherical in z otherwise), or prompts."""
    from .inference.control import parse_seeds
    from .sampling import write_walk

    if seeds is None and prompts is None:
        raise GanforgeError("interpolate needs --seeds 1,2,3 (or --prompts 'A|B' for text-to-image runs)")
    walk = None if prompts is None else [p.strip() for p in prompts.split("|")]
    chosen = parse_seeds(seeds, "--seeds") if seeds is not None else []
    out.print(f"wrote {write_walk(_sampler(run_dir), chosen, frames, out_path, truncation, label, walk)}")


@app.command()
def project(
    run_dir: Path = typer.Argument(..., help="A run of an image generator (not text-to-image or diffusion)."),
    image: Path = typer.Option(..., help="An image, a folder of images or an .npy of images [N, C, H, W] in [0, 1]; "
                                         "fitted to the run's size (centred square crop) and channels."),
    out_path: Path = typer.Option(..., "--out", help="Folder for projection.png, latent.npy, projection.json and "
                                                     "walk.gif (one subfolder per image for several)."),
    steps: int = typer.Option(200, help="Optimisation steps."),
    space: str | None = typer.Option(None, help="w, w+ (style-based generators; default w) or z (default for the "
                                                "others)."),
    pixel: float = typer.Option(0.0, help="Weight of a pixel MSE added to the perceptual loss."),
    noise: bool = typer.Option(True, help="Optimise a style-based generator's noise maps too (--no-noise: keep "
                                          "its fixed ones)."),
    seed: int = typer.Option(0, help="Random seed (starts and latent noise)."),
    init: str = typer.Option("mean", help="Start: mean (the mean w; the best of random z) or encoder (a learned "
                                          "encoder's guess; trained once per run, kept in RUN)."),
) -> None:
    """Project real images into the latent space (then ganforge edit --latent OUT/latent.npy)."""
    from .editing import project_files

    results = project_files(_sampler(run_dir), image, out_path, space, steps, pixel, noise, seed, init=init)
    for name, p, folder in results:
        label = "" if p.label is None else f", class {p.label}"
        out.print(f"{name}: PSNR {p.psnr:.2f} dB, perceptual distance {p.distance:.4f}{label} -> {folder}")


@app.command()
def directions(
    run_dir: Path = typer.Argument(..., help="A run of an image generator."),
    out_path: Path | None = typer.Option(None, "--out", help="FILE.png: a row per direction and seed, seven "
                                                             "strengths (default RUN/directions.png)."),
    seeds: str = typer.Option("0", help="Samples the picture edits: 0 or 1,2,3."),
) -> None:
    """List the latent directions edit can move along (classes and principal components), with a picture."""
    from .editing import write_directions
    from .inference.control import parse_seeds

    g = _sampler(run_dir)
    picture, found = write_directions(g, out_path or Path(run_dir) / "directions.png", parse_seeds(seeds))
    for d in found:
        out.print(f"{d.name:10s} {d.describe}")
    if g.num_classes and not any(d.kind == "class" for d in found):
        out.print("classes: this generator takes its class as an input; redraw a projected latent in another class "
                  "with ganforge edit RUN --latent L.npy --label N")
    out.print(f"wrote {picture} (a row per direction and seed; class directions at -1 .. 2 times the class's "
              "mean offset, pcN at -3 .. 3 standard deviations)")


@app.command()
def edit(
    run_dir: Path = typer.Argument(..., help="A run of an image generator."),
    direction: str | None = typer.Option(None, help="A direction from ganforge directions RUN: class-3, pc0, ..."),
    out_path: Path = typer.Option(..., "--out", help="edit.png (strip), edit.gif, edit.mp4 or edit.npy (float32)."),
    latent: Path | None = typer.Option(None, help="A latent.npy written by ganforge project."),
    seed: int | None = typer.Option(None, help="Or edit the sample of this seed (as ganforge sample --seed S)."),
    label: int | None = typer.Option(None, help="The class of the seed's sample (conditional runs); with --latent, "
                                                "the class to redraw a projected latent in (conditional runs without "
                                                "w, whose class is an input)."),
    strength: str = typer.Option("0,0.5,1,1.5,2", help="Steps along the direction: class-N in multiples of the "
                                                        "class's mean offset, pcN in standard deviations."),
    layers: str | None = typer.Option(None, help="Style-based generators: move only these layers' styles "
                                                 "(coarse, middle, fine, A-B, a,b,c); default all."),
) -> None:
    """Move a projected latent (or a seed's) along a direction: a strip of images, one per strength."""
    from .editing import start_of, write_edit
    from .inference.directions import parse_strengths

    if direction is None and (label is None or latent is None):
        raise GanforgeError("edit needs --direction NAME (ganforge directions RUN lists them), or --latent L.npy "
                            "--label N to redraw a projected latent in another class")
    strengths = parse_strengths(strength)
    g = _sampler(run_dir)
    out.print(f"wrote {write_edit(g, start_of(g, latent, seed, label), direction, strengths, out_path, layers)}")


@app.command()
def translate(
    run_dir: Path = typer.Argument(..., help="A translation run directory."),
    input_path: Path = typer.Option(..., "--input", help="An image, a folder of images, or an .npy [N, C, H, W]."),
    out_path: Path = typer.Option(..., "--out", help="FILE.png, FILE.npy (float32) or a DIR (one PNG per input)."),
    direction: str | None = typer.Option(None, help="AtoB or BtoA; default: the run's first direction (AtoB for "
                                                     "two-way translators)."),
    fit: str | None = typer.Option(None, help="resize (to the trained size) or tile (at the image's own scale); "
                                              "default: tile for models trained on photo patches, else resize."),
) -> None:
    """Translate images with a trained translation model. Unreadable files of a folder are
    skipped and listed, the rest translated; the exit code is then 2."""
    from .translation import translate_files

    translator = _translator(run_dir)
    written, n, skipped = translate_files(translator, input_path, out_path, translator.direction(direction), fit)
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise GanforgeError(f"wrote {n} translation(s) to {written}, but skipped {len(skipped)} unreadable "
                            f"file(s): {', '.join(skipped[:5])}{more}")
    out.print(f"wrote {n} translation(s) to {written}")


def _loaded(run_dir: Path, kind):
    """A run's pipeline for a command of one kind (sample, translate, upscale); another kind is refused in one
    line that names the command it needs."""
    from .api import load

    model = load(run_dir)
    model.refuse(kind, run_dir)
    return model


def _translator(run_dir: Path):
    from .api import Translator

    return _loaded(run_dir, Translator)


def _sampler(run_dir: Path):
    """A run's generator for sample / mix / interpolate / synthesize; translation and SR runs are refused."""
    from .api import Generator

    return _loaded(run_dir, Generator)


@app.command()
def upscale(
    run_dir: Path = typer.Argument(..., help="A super-resolution run directory."),
    input_path: Path = typer.Option(..., "--input", help="An image or a folder of images (any size and mode)."),
    out_path: Path = typer.Option(..., "--out", help="FILE.png, or a DIR (one PNG per input, names mirrored)."),
    blend: float = typer.Option(1.0, help="0: the PSNR-oriented model, 1: the GAN model, between: their "
                                          "weights interpolated."),
    tile: int = typer.Option(256, help="Tile side in input pixels (memory stays bounded by one tile)."),
) -> None:
    """Upscale images with a trained super-resolution model; the same mode (grey, RGBA, 16-bit) comes back.
    Unreadable files of a folder are skipped and listed, the rest upscaled; the exit code is then 2."""
    from .api import Upscaler
    from .superres import upscale_files

    g = _loaded(run_dir, Upscaler)
    written, n, skipped = upscale_files(g, input_path, out_path, blend, tile)
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise GanforgeError(f"wrote {n} upscaled image(s) to {written}, but skipped {len(skipped)} unreadable "
                            f"file(s): {', '.join(skipped[:5])}{more}")
    out.print(f"wrote {n} upscaled image(s) to {written}")


@app.command()
def synthesize(
    run_dir: Path = typer.Argument(..., help="A conditional run directory."),
    per_class: int = typer.Option(..., help="Images per class."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: one subfolder per class."),
    seed: int = typer.Option(0, help="Random seed."),
    truncation: float | None = typer.Option(None, help="Truncation psi (> 0)."),
) -> None:
    """Write a labelled synthetic dataset (readable back with --data folder:DIR)."""
    from .sampling import synthesize as write

    n = write(_sampler(run_dir), per_class, out_dir, seed, truncation)
    out.print(f"wrote {n} synthetic images to {out_dir}")


@app.command("eval")
def eval_(
    run_dir: Path | None = typer.Argument(None, help="A run directory (samples its EMA generator)."),
    images: Path | None = typer.Option(None, help="Samples to judge instead: a .npy (as `sample` writes) or a folder."),
    data: str | None = typer.Option(None, help="Real dataset to compare with (default: the run's, or digits)."),
    metrics: str | None = typer.Option(None, help="Comma-separated: fd,kid,prdc,classes,modes,fid,is."),
    n: int | None = typer.Option(None, help="Generated samples (default 10,000 images / 2,500 points)."),
    features: str | None = typer.Option(None, help="Feature extractor for fd/kid/prdc: digits, inception, ..."),
    seed: int = typer.Option(0, help="Random seed."),
    inception_weights: Path | None = typer.Option(None, help="Local pt_inception-2015-12-05 weights for fid/is."),
    checkpoint: str = typer.Option("latest", help="latest or best."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
) -> None:
    """Evaluate a run or a set of samples; prints a table or JSON with the protocol."""
    import json

    from .evaluation import evaluate

    if n is not None and n < 2:
        raise GanforgeError(f"--n {n} is not allowed; expected an integer >= 2")
    if checkpoint not in ("latest", "best"):
        raise GanforgeError(f"--checkpoint {checkpoint!r} is not allowed; expected latest or best")
    result = evaluate(run_dir, images, data, metrics, n, features, seed,
                      str(inception_weights) if inception_weights else None, checkpoint=checkpoint)
    if as_json:
        print(json.dumps(result, default=float))
        return
    from rich.table import Table

    def rows(d: dict, prefix: str = ""):  # nested measures (each trivial baseline's) as dotted names
        for k, v in d.items():
            if isinstance(v, dict):
                yield from rows(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    table = Table("metric", "value", title="ganforge eval")
    for k, v in rows({k: v for k, v in result.items() if k != "protocol"}):
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    out.print(table)
    out.print("protocol: " + ", ".join(f"{k}={v}" for k, v in result["protocol"].items()), markup=False)


@app.command("compare")
def compare_(
    runs: list[Path] = typer.Argument(..., help="Run directories (GANs, autoencoders, diffusion) trained on the "
                                                "same data."),
    data: str | None = typer.Option(None, help="The common reference dataset (needed when the runs' data differ)."),
    n: int = typer.Option(1000, help="Samples per run."),
    seed: int = typer.Option(0, help="Random seed of the samples."),
    samplers: str = typer.Option("ddim-50", help=f"Diffusion runs: samplers to measure, SAMPLER-STEPS,... "
                                                 f"({_SAMPLERS})."),
    device: str = typer.Option("cpu", help="Device for sampling and timing."),
    out_path: Path = typer.Option(Path("compare.md"), "--out", help="Markdown table; the sample picture goes "
                                                                   "beside it as .png."),
    as_json: bool = typer.Option(False, "--json", help="Also print one JSON object on the last line."),
) -> None:
    """GANs against autoencoders and diffusion by one protocol: quality, diversity, speed, training cost,
    spread over seeds."""
    import json

    from .compare import compare, markdown
    from .io import write_json, write_text

    if out_path.suffix.lower() != ".md":
        raise GanforgeError(f"--out {str(out_path)!r}: expected FILE.md (the picture and JSON go beside it)")
    result = compare(runs, data, n, seed, samplers, device, grid=out_path.with_suffix(".png"))
    text = markdown(result)
    write_text(out_path, text)
    write_json(out_path.with_suffix(".json"), result)
    out.print(text, markup=False, soft_wrap=True)
    out.print(f"wrote {out_path}, {out_path.with_suffix('.json')} and {out_path.with_suffix('.png')}")
    if as_json:
        print(json.dumps(result, default=float))


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="Run directories."),
    open_: bool = typer.Option(False, "--open", help="Open the report in a web browser."),
) -> None:
    """Write RUN/report.html (self-contained: grids, curves, health, metrics, timings, model card) and
    RUN/MODEL_CARD.md. To put several runs side by side, use ganforge compare."""
    from .train.report_html import write_pages

    for run in runs:
        path = write_pages(run)
        out.print(f"wrote {path} and {path.with_name('MODEL_CARD.md')}", markup=False)
        if open_:
            import webbrowser

            webbrowser.open(path.resolve().as_uri())


@app.command()
def serve(
    run_dir: Path = typer.Argument(..., help="A run directory, or pretrained:NAME (ganforge list pretrained)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000, help="Port."),
    threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    max_n: int = typer.Option(64, help="Most images one /generate request may ask for."),
) -> None:
    """Serve the run over HTTP: POST /generate, /interpolate, /translate or /upscale; GET /health, /info."""
    from .server import serve as run_server

    if max_n < 1:
        raise GanforgeError(f"--max-n {max_n} is not allowed; expected an integer >= 1")
    run_server(run_dir, host, port, demo=False, threads=threads, device=device, max_n=max_n)


@app.command()
def demo(
    run_dir: Path = typer.Argument(..., help="A run directory, or pretrained:NAME (ganforge list pretrained)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(7860, help="Port."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
) -> None:
    """A local web page for the run: samples by seed, class and truncation, latent walks, or uploads to
    translate or upscale. Works offline."""
    from .server import serve as run_server

    run_server(run_dir, host, port, demo=True, device=device)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory (its EMA generator is exported)."),
    fmt: str = typer.Option("onnx", "--format", help="onnx or torchscript."),
    out_path: Path | None = typer.Option(None, "--out", help="FILE.onnx or FILE.pt (default RUN/export/generator.*); "
                                                             "the contract goes beside it as FILE.*.json."),
    direction: str | None = typer.Option(None, help="Translation runs: the direction to export (default: the run's "
                                                     "first, AtoB for two-way translators)."),
    truncation: float | None = typer.Option(None, help="Samplers: a truncation psi baked into the file."),
    blend: float = typer.Option(1.0, help="Upscalers: 0 the PSNR-oriented model, 1 the GAN model."),
    int8: bool = typer.Option(False, "--int8", help="ONNX: quantize weights and activations to int8 (onnxruntime, "
                                                   "static, calibrated on drawn inputs)."),
) -> None:
    """Export the generator to ONNX or TorchScript with its input contract, checked against PyTorch."""
    from .api import load
    from .export import FORMATS, contract_path, describe
    from .export import export as write

    if fmt not in FORMATS:
        raise GanforgeError(f"--format {fmt!r} is not allowed; expected {' or '.join(FORMATS)}")
    if not 0 <= blend <= 1:
        raise GanforgeError(f"--blend {blend} is not allowed; expected a number in [0, 1]")
    target = out_path or Path(run_dir) / "export" / f"generator{FORMATS[fmt]}"
    model = load(run_dir)
    direction = model.direction(direction) if model.kind == "translator" else "AtoB"
    contract = write(model, fmt, target, direction, truncation, blend, int8)
    out.print(f"wrote {target} and {contract_path(target)}", markup=False)
    parity = contract["parity"]
    out.print(f"{describe(contract)}; max |diff| against PyTorch {parity['max_abs_diff']:.2g}"
              + (f", mean {parity['mean_abs_diff']:.2g} (int8)" if int8 else ""), markup=False)


@app.command()
def verify(
    images: list[Path] = typer.Argument(..., help="Images or folders of images to check."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per image instead of a line."),
    thorough: bool = typer.Option(False, "--thorough", help="Also look for the watermark as it was before a resize "
                                  "by a usual factor (1/2, 2/3, 3/4, 0.8, 0.9, 1.1, 1.25, 1.5, 2); slower."),
) -> None:
    """Say for each image whether ganforge made it: watermark found, metadata found, or neither (exit 0)."""
    import json

    from .data.folder import find_images
    from .runs.provenance import verdict_line
    from .runs.provenance import verify as check

    paths = [p for path in images for p in (find_images(path) if path.is_dir() else [path])]
    if not paths:
        raise GanforgeError("no image to verify in " + ", ".join(map(str, images)))
    for path in paths:
        v = check(path, thorough)
        print(json.dumps(v) if as_json else verdict_line(v), flush=True)


@app.command("data")
def data_(
    folder: Path = typer.Argument(..., help="A folder of images (what --data folder:DIR would train on)."),
    sheet: Path | None = typer.Option(None, help="Where to write the contact sheet PNG (default: "
                                      "DIR-contact-sheet.png beside the folder)."),
) -> None:
    """Say what a folder of images holds before training on it: counts, sizes, modes, duplicates, unreadable
    files, and a contact sheet. Training takes any sizes and modes as they are; nothing is changed."""
    from .data.inspect import contact_sheet, inspect_folder

    report = inspect_folder(folder)
    for line in report.lines():
        out.print(line, markup=False, soft_wrap=True)
    if report.readable:
        root = folder.expanduser().resolve()
        target = sheet or root.parent / f"{root.name}-contact-sheet.png"
        out.print(f"contact sheet: {contact_sheet(report, target)}", markup=False, soft_wrap=True)


@app.command("list")
def list_(what: str = typer.Argument("recipes", help="recipes, datasets, losses, metrics, features, pretrained "
                                                    "(runs shipped with ganforge, pretrained:NAME), or "
                                                    "vocabulary RUN (the words a text-to-image run knows)"),
          run_dir: Path | None = typer.Argument(None, help="The run, for vocabulary.")) -> None:
    """List registered recipes, datasets, losses, metrics or feature extractors, the shipped pretrained runs, or a
    run's vocabulary."""
    from .data import DATASETS
    from .losses import LOSSES
    from .metrics import FEATURES, METRICS
    from .recipes import RECIPES

    if what == "vocabulary":
        if run_dir is None:
            raise GanforgeError("list vocabulary needs a run: ganforge list vocabulary RUN")
        from .runs.rundir import read_run

        words = read_run(run_dir)[2].vocab
        if not words:
            raise GanforgeError(f"{run_dir} was not trained on captions; it has no vocabulary")
        out.print(" ".join(words))
        return
    if what == "pretrained":
        from .runs.rundir import PRETRAINED, pretrained_names, pretrained_root, read_meta

        for name in pretrained_names():
            out.print(f"{PRETRAINED + name:<28} {read_meta(pretrained_root() / name).get('summary', '')}",
                      markup=False)
        return
    registries = {"recipes": RECIPES, "datasets": DATASETS, "losses": LOSSES, "metrics": METRICS,
                  "features": FEATURES}
    if what not in registries:
        raise GanforgeError(f"cannot list {what!r}; choose from: {', '.join(registries)}, pretrained, "
                            "vocabulary RUN")
    reg = registries[what]
    for name in reg.list():
        out.print(f"{name:<16} {reg.describe(name)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line and exit code 2."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv if argv is not None else sys.argv[1:], prog_name="ganforge", standalone_mode=False)
    except GanforgeError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        return 2
    except click_exc.NoArgsIsHelpError:  # the help was already printed
        return 2
    except click_exc.UsageError as e:
        err.print(f"[red]error:[/red] {escape(e.format_message())}", soft_wrap=True)
        return 2
    except typer.Abort:
        err.print("[red]aborted[/red]")
        return 130
    except KeyboardInterrupt:
        err.print("[red]interrupted[/red]; the last checkpoint is kept")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
