"""Text-to-image on ``shapes``: does each picture show what its caption says? (issue 15)

    python benchmarks/text2image.py --run RUN [--n 1000] [--figures benchmarks/figures/text2image]
    python benchmarks/text2image.py --train --out RUN      # train the preset first, timed

Seen captions describe fresh scenes made only of colour-shape pairs training shows; held-out captions
each name at least one pair it never shows (green triangle, blue circle, yellow square). For both: the
scene parser's per-attribute and all-attributes accuracy, R-precision with the run's own encoders (and
for the real pictures of the same captions), and fd in the image encoder's space. Sample grids with their
prompts go to --figures.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

import ganforge
from ganforge.data import Dataset
from ganforge.data.shapes import make_scenes
from ganforge.metrics.text2image import text_metrics

SEEN_PROMPTS = ["a big red circle left of a small blue square", "a little yellow triangle above a big green circle",
                "there is a blue triangle under a red square", "a large green square",
                "a picture of a small yellow circle", "a red triangle is to the right of a yellow disc"]
HELD_OUT_PROMPTS = ["a big green triangle", "a small blue circle left of a red square",
                    "there is a yellow square below a big blue triangle", "a picture of a large yellow box",
                    "a red circle on top of a little green triangle", "a blue ball to the right of a yellow square"]


def scenes(n: int, res: int, seed: int, held_out: bool) -> Dataset:
    x, captions, meanings = make_scenes(n, res, seed, held_out)
    return Dataset("shapes", x, captions=captions, info={"meanings": meanings})


def prompt_grid(g, prompts: list[str], path: Path, per: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(prompts), 1, figsize=(per * 0.9, len(prompts) * 1.15))
    for ax, p in zip(axes, prompts):
        x = g.sample(per, seed=0, labels=p)  # [per, 3, H, W]
        ax.imshow(torch.cat(list(x), 2).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(p, fontsize=8, loc="left")
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path)
    ap.add_argument("--train", action="store_true", help="train the preset into --out first")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--n", type=int, default=1000, help="captions per set")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--figures", type=Path, default=None)
    args = ap.parse_args()
    run = args.run or args.out
    if args.train:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ganforge", "train", "--recipe", "text2image", "--data", "shapes",
                        "--out", str(run)], check=True)
        print(f"train: {time.perf_counter() - t:.0f} s")
    g = ganforge.load(run)
    res = g.spec.shape[-1]
    sets = {"seen": scenes(args.n, res, 10_000 + args.seed, False), "held_out": scenes(args.n, res, 20_000 + args.seed,
                                                                                       True)}
    t = time.perf_counter()
    result = text_metrics(g.recipe, g.net, sets, args.n, args.seed)
    print(f"measured in {time.perf_counter() - t:.0f} s")
    cols = ["scene_all", "scene_count", "scene_color", "scene_shape", "scene_size", "scene_relation", "r_precision",
            "r_precision_real", "fd_encoder"]
    print("| captions | " + " | ".join(c.replace("scene_", "") for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name in sets:
        print(f"| {name} | " + " | ".join(f"{result[f'{name}/{c}']:.3f}" for c in cols) + " |")
    print(json.dumps({"run": str(run), "n": args.n, "seed": args.seed, **result}))
    if args.figures:
        prompt_grid(g, SEEN_PROMPTS, args.figures / "seen.png")
        prompt_grid(g, HELD_OUT_PROMPTS, args.figures / "held_out.png")
        print(f"figures in {args.figures}")


if __name__ == "__main__":
    main()
