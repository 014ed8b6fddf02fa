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
              ("hq_frac", "high-quality fraction"), ("reverse_kl", "reverse KL of modes")]


def final_metrics_lines(final: dict | None) -> list[str]:
    if not final:
        return []
    p = final["protocol"]
    rows = [f"| {label} | {final[k]:.4g} |" for k, label in FINAL_KEYS if k in final]
    card = (f"{p['n_fake']} samples (EMA generator) against {p['n_real']} of the {p['reference']}, "
            f"features: {p.get('extractor', '-')}, seed {p['seed']}, ganforge {p['ganforge_version']}")
    return ["## Quality and diversity at the end of training", "", "| measure | value |", "| --- | --- |", *rows,
            "", f"Protocol: {card}. Recall and coverage say how much of the data the samples cover; "
            "precision and density how much of the samples look like data.", ""]


def write_report(run_dir: Path, cfg: TrainConfig, state, records: list[dict], data: Dataset, world: int,
                 health: str, final: dict | None = None) -> None:
    last = next((r for r in reversed(records) if any(k.startswith("Loss/") for k in r)), {})
    speed = [r["Timing/img_per_s"] for r in records if isinstance(r.get("Timing/img_per_s"), float)]
    lines = [
        f"# {run_dir.name}",
        "",
        f"- recipe: `{cfg.recipe}`, loss: `{cfg.loss}`, data: `{cfg.data}` ({len(data)} training samples, "
        f"shape {list(data.shape)})",
        f"- steps: {state.step}, batch: {cfg.batch_size}, images seen: {state.images_seen}, processes: {world}",
        f"- wall time: {state.seconds:.1f} s, mean speed: {sum(speed) / max(len(speed), 1):.0f} images/s",
        "- final losses: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k.startswith("Loss/")),
        f"- {health}",
        "",
        *final_metrics_lines(final),
        "## Samples (EMA generator, fixed latents)" if cfg.ema.enabled else "## Samples (fixed latents)",
        "",
        "![final samples](samples/final.png)",
        "",
        "## Training curves",
        "",
        "![losses](losses.png)",
        "",
        "Resume with `ganforge train --resume " + str(run_dir) + " --steps N`; "
        "sample with `ganforge sample " + str(run_dir) + " --n 64 --out grid.png`.",
        "",
    ]
    write_text(run_dir / "report.md", "\n".join(lines))
