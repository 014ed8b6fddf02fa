"""Benchmark: SRGAN / ESRGAN x4 on photos they never saw, and upscaling a 4000 x 3000 photo (issue 11).

Usage:
    python benchmarks/superres.py                        # train the esrgan preset as a user, then measure
    python benchmarks/superres.py --recipe srgan
    python benchmarks/superres.py --run RUN_DIR          # measure an existing run
    python benchmarks/superres.py --run RUN_DIR --big    # + the 4000 x 3000 upscale (wall time, peak memory)

Measured, for bicubic and the run's generator at --blend 0 (PSNR-oriented), 0.5 and 1 (GAN):
Y-channel PSNR and SSIM (4 px border crop) and the high-frequency energy ratio and correlation
(ganforge.metrics.superres) on
- the held-out photos of sr:photos (chelsea, rocket), whole;
- scikit-image images no run trains on, grey ones upscaled as RGB: camera, coins, brick, grass, gravel;
- scikit-learn's two colour photos (china, flower), never trained on and never used to choose a preset.
Crops of bicubic | blend 0 | blend 1 | truth go to benchmarks/figures/superres/.
Issue 11's targets: blend 0 beats bicubic by >= 0.5 dB and on SSIM; blend 1 has more high-frequency
detail than bicubic and blend 0 and stays within 2 dB of blend 0; both stages <= 30 minutes; the
4000 x 3000 upscale under 4 GiB peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ganforge
from ganforge.data.superres import bicubic_up, degrade, held_out_images
from ganforge.metrics.superres import image_scores

FIGURES = Path(__file__).parent / "figures" / "superres"
EXTRA = ("camera.png", "coins.png", "brick.png", "grass.png", "gravel.png")
BLENDS = (0.0, 0.5, 1.0)


def extra_images() -> list[tuple[str, torch.Tensor]]:
    import skimage

    out = []
    for name in EXTRA:
        with Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", name)) as img:
            a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
        out.append((name, torch.from_numpy(a).permute(2, 0, 1).contiguous()))
    return out


def untouched_photos() -> list[tuple[str, torch.Tensor]]:
    """scikit-learn's two colour photos (china, flower): natural photos that no preset trains on and that were
    never used to choose one."""
    from sklearn.datasets import load_sample_image

    return [(name, torch.from_numpy(load_sample_image(name).astype(np.float32) / 255).permute(2, 0, 1).contiguous())
            for name in ("china.jpg", "flower.jpg")]


def measure(g, images: list[tuple[str, torch.Tensor]], scale: int) -> list[dict]:
    rows = []
    for name, hr in images:
        hr = hr[:, : hr.shape[1] // scale * scale, : hr.shape[2] // scale * scale]
        lr = degrade(hr[None], scale)[0]
        row = {"image": name, "bicubic": image_scores(bicubic_up(lr[None], scale)[0], hr, scale)}
        for b in BLENDS:
            row[f"blend {b:g}"] = image_scores(g.upscale(lr, blend=b), hr, scale)
        rows.append(row)
    return rows


def table(rows: list[dict], title: str) -> str:
    methods = [k for k in rows[0] if k != "image"]
    keys = ("psnr", "ssim", "hf_ratio", "hf_corr")
    lines = [f"### {title}", "", "| method | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]
    for m in methods:
        means = [sum(r[m][k] for r in rows) / len(rows) for k in keys]
        lines.append(f"| {m} | " + " | ".join(f"{v:.4f}" if k != "psnr" else f"{v:.2f}" for k, v in
                                               zip(keys, means)) + " |")
    lines += ["", "| image | " + " | ".join(f"{m} PSNR / SSIM" for m in methods) + " |",
              "| --- |" + " --- |" * len(methods)]
    for r in rows:
        lines.append(f"| {r['image']} | " + " | ".join(f"{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f}" for m in methods)
                     + " |")
    return "\n".join(lines) + "\n"


def crops(g, scale: int, name: str) -> None:
    """bicubic | blend 0 | blend 1 | truth for a 96 px crop of each held-out photo, enlarged 2x."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    strips = []
    for _, hr in held_out_images("photos"):
        hr = hr[:, : hr.shape[1] // scale * scale, : hr.shape[2] // scale * scale]
        lr = degrade(hr[None], scale)[0]
        t, le = hr.shape[1] // 2 - 48, hr.shape[2] // 2 - 48
        cells = [bicubic_up(lr[None], scale)[0], g.upscale(lr, blend=0.0), g.upscale(lr, blend=1.0), hr]
        row = torch.cat([c[:, t : t + 96, le : le + 96] for c in cells], 2)
        strips.append(torch.nn.functional.interpolate(row[None], scale_factor=2, mode="nearest")[0])
    grid = torch.cat(strips, 1).clamp(0, 1)
    Image.fromarray((grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(FIGURES / f"{name}.png")


def big_upscale(run: Path) -> dict:
    """``ganforge upscale`` on a 4000 x 3000 RGB image in a fresh process: wall time and peak memory."""
    tmp = Path(tempfile.mkdtemp(prefix="ganforge-big-"))
    rng = np.random.default_rng(0)
    _, hr = held_out_images("photos")[0]
    base = Image.fromarray((hr.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).resize((4000, 3000),
                                                                                         Image.BICUBIC)
    noisy = np.clip(np.asarray(base, dtype=np.int16) + rng.integers(-8, 9, (3000, 4000, 3)), 0, 255)
    Image.fromarray(noisy.astype(np.uint8)).save(tmp / "big.png")
    cmd = ["/usr/bin/time", "-f", "%M %e", "ganforge", "upscale", str(run), "--input", str(tmp / "big.png"),
           "--out", str(tmp / "big-x4.png")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    peak_kb, wall = done.stderr.strip().splitlines()[-1].split()
    Image.MAX_IMAGE_PIXELS = None  # our own 192 Mpx output
    with Image.open(tmp / "big-x4.png") as out:
        size = out.size
    return {"command": " ".join(cmd[3:]), "peak_rss_mib": int(peak_kb) / 1024, "wall_s": float(wall),
            "output_size": size}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="esrgan")
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args, extra = ap.parse_known_args()
    run, wall = args.run, None
    if run is None:
        run = Path(tempfile.mkdtemp(prefix=f"ganforge-{args.recipe}-")) / "run"
        cmd = ["ganforge", "train", "--recipe", args.recipe, "--out", str(run), *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        print(f"command: {' '.join(cmd)}\nwall time: {wall:.0f} s", flush=True)
    g = ganforge.load(run)
    result = {"run": str(run), "train_wall_s": wall,
              "held_out": measure(g, held_out_images("photos"), g.scale), "extra": measure(g, extra_images(), g.scale),
              "untouched": measure(g, untouched_photos(), g.scale)}
    crops(g, g.scale, f"{args.recipe}-crops")
    text = table(result["held_out"], "Held-out photos of sr:photos (chelsea, rocket)")
    text += "\n" + table(result["extra"], "scikit-image images no run trains on (" + ", ".join(EXTRA) + ")")
    text += "\n" + table(result["untouched"], "scikit-learn's colour photos, never trained on nor used to choose")
    if args.big:
        result["big"] = big_upscale(run)
        text += f"\n4000 x 3000 upscale: {result['big']}\n"
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
