"""A human-readable summary of a run: ``RUN/report.md``."""
from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from ..data import Dataset
from ..io import write_text


def write_report(run_dir: Path, cfg: TrainConfig, state, records: list[dict], data: Dataset, world: int,
                 health: str) -> None:
    last = records[-1] if records else {}
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
