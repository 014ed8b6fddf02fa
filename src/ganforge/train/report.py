"""A human-readable summary of a run: ``RUN/report.md``."""
from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from ..data import Dataset
from ..io import write_text

FINAL_KEYS = [("fd", "fd (lower is better)"), ("precision", "precision (quality)"),
              ("recall", "recall (diversity)"), ("density", "density"), ("coverage", "coverage (diversity)"),
              ("class_confident", "confident under the digits classifier"), ("classes_present", "classes present"),
              ("label_agreement", "label agreement (conditional)"), ("modes", "modes captured"),
              ("hq_frac", "high-quality fraction"), ("reverse_kl", "reverse KL of modes"),
              ("mem_ratio", "memorisation: nearest-training distance / held-out's (~1: new images, ~0: copies)"),
              ("mem_copies", "memorisation: share of samples that are near copies (held-out real images: ~0.01)")]


TRANSLATION_ROWS = [("psnr", "PSNR (dB, higher is better)"), ("ssim", "SSIM (higher is better)"),
                    ("l1", "L1 (lower is better)"), ("fd", "fd against the held-out targets (lower is better)"),
                    ("labels_kept_ab", "digit kept A->B (typeset judge)"),
                    ("labels_kept_ba", "digit kept B->A (handwritten judge)"),
                    ("cycle_l1", "cycle L1 (lower is better)"),
                    ("fd_ab", "fd of A->B against B (lower is better)"), ("fd_ba", "fd of B->A against A"),
                    ("hf_ratio", "high-frequency energy / the truth's (1: as much detail)"),
                    ("hf_corr", "high-frequency correlation with the truth (1: the true detail)")]
BASELINE_OF = {"labels_kept_ab": "identity_kept_ab", "labels_kept_ba": "identity_kept_ba"}


def translation_lines(final: dict) -> list[str]:
    """The translation table: each measure beside the strongest trivial baseline (paired: the best of the input
    itself, the mean image and the per-pixel lookup; unpaired: no translation)."""
    p = final["protocol"]
    rows = []
    for k, label in TRANSLATION_ROWS:
        if k in final:
            base = final.get(f"baseline_{k}", final.get(BASELINE_OF.get(k, ""), None))
            rows.append(f"| {label} | {final[k]:.4g} | {'-' if base is None else f'{base:.4g}'} |")
    base = p.get("baseline", "no translation (the input itself)")
    how = (f"x{p['scale']} on the {p['channel']} channel, {p['border']} px border crop, LR by {p['degradation']}"
           if "scale" in p else f"seed {p.get('seed')}")
    title = "Upscaling quality" if "scale" in p else "Translation quality"
    return [f"## {title} at the end of training", "", f"| measure | model | strongest trivial baseline: {base} |",
            "| --- | --- | --- |", *rows, "", f"Protocol: {p.get('images')} of {p['data']}, {how}, "
            f"ganforge {p['ganforge_version']}.", ""]


def final_metrics_lines(final: dict | None) -> list[str]:
    if not final:
        return []
    if "psnr" in final or "cycle_l1" in final:
        return translation_lines(final)
    p = final["protocol"]
    labels = [*FINAL_KEYS, *p.get("labels", {}).items()]  # a recipe's own measures name themselves
    rows = [f"| {label} | {final[k]:.4g} |" for k, label in labels if isinstance(final.get(k), (int, float))]
    card = (f"{p['n_fake']} samples (EMA generator) against {p['n_real']} of the {p['reference']}, "
            f"features: {p.get('extractor', '-')}, seed {p['seed']}, ganforge {p['ganforge_version']}")
    return ["## Quality and diversity at the end of training", "", "| measure | value |", "| --- | --- |", *rows,
            "", f"Protocol: {card}. Recall and coverage say how much of the data the samples cover; "
            "precision and density how much of the samples look like data.", ""]


def write_report(run_dir: Path, cfg: TrainConfig, state, records: list[dict], data: Dataset, world: int,
                 health: str, final: dict | None = None) -> None:
    last = next((r for r in reversed(records) if any(k.startswith("Loss/") for k in r)), {})
    from ..recipes import recipe_class

    recipe = recipe_class(cfg.recipe)
    loss = f", loss: `{cfg.loss}`" if recipe.adversarial else ""
    pictures = recipe.pipeline.pictures.replace("(fixed latents)", "(EMA generator, fixed latents)" if cfg.ema.enabled
                                                else "(fixed latents)")
    speed = [r["Timing/img_per_s"] for r in records if isinstance(r.get("Timing/img_per_s"), float)]
    lines = [
        f"# {run_dir.name}",
        "",
        f"- recipe: `{cfg.recipe}`{loss}, data: `{cfg.data}` ({len(data)} training samples, "
        f"shape {list(data.shape)})",
        f"- steps: {state.step}, batch: {cfg.batch_size}, images seen: {state.images_seen}, processes: {world}",
        f"- wall time: {state.seconds:.1f} s, mean speed: {sum(speed) / max(len(speed), 1):.0f} images/s",
        "- final losses: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k.startswith("Loss/")),
        f"- {health.splitlines()[0]}",
        *(f"  - {advice.strip()}" for advice in health.splitlines()[1:]),  # what each warning means, what to try
        "",
        *final_metrics_lines(final),
        f"## {pictures}",
        "",
        "![final samples](samples/final.png)",
        "",
        *(f"![{p.stem}](samples/{p.name})\n" for p in sorted((run_dir / "samples").glob("final-*.png"))),
        "## Training curves",
        "",
        "![losses](losses.png)",
        "",
        f"Resume with `ganforge train --resume {run_dir} --steps N`; {recipe.pipeline.example.format(run=run_dir)}.",
        "",
    ]
    write_text(run_dir / "report.md", "\n".join(lines))
