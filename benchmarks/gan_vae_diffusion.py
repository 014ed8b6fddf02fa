"""Benchmark: GAN vs VAE vs diffusion on the bundled digits, each at its preset, over seeds (issue 12).

Usage:
    python benchmarks/gan_vae_diffusion.py --runs-dir /tmp/gvd                  # train what is missing, measure
    python benchmarks/gan_vae_diffusion.py --runs-dir /tmp/gvd --recipes vae,ddpm --seeds 0
    python benchmarks/gan_vae_diffusion.py --runs-dir /tmp/gvd --slow-sampler   # + DDPM-1000 at n=200

Every run is trained with the CLI as a user types it (``ganforge train --recipe R --seed S``, a
fresh process, wall time including start-up) into ``RUNS_DIR/<recipe>-s<seed>``; finished runs are
reused, so an interrupted benchmark continues. Then:

1. ``ganforge compare`` over all runs (1,000 samples each, DDIM-50 for DDPM): fd, kid, precision,
   recall, density, coverage, the digits classifier's view, speed, training cost, spread over seeds;
2. the independent judge (benchmarks/digit_judge.py, a scikit-learn MLP): the share of 1,000
   samples classified with confidence >= 0.9 and the rarest predicted digit's share;
3. sharpness: the mean absolute Laplacian of the samples relative to the real digits' (1.0: as
   sharp as the data; below: blurrier);
4. with ``--slow-sampler``: a second compare at n=200 with DDPM's own 1,000-step ancestral sampler
   beside DDIM-50, for the first seed of each recipe.
Issue 12's targets: DDPM within 15 minutes and >= 85 % confident with every digit >= 5 %; VAE within
5 minutes; the GAN >= 100x the images per second of DDPM-1000.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, judge  # noqa: E402

import ganforge  # noqa: E402
from ganforge.compare import compare, markdown  # noqa: E402
from ganforge.data import DataRequest, load_dataset  # noqa: E402

RECIPES = {"cgan": [], "stylegan2": ["--recipe", "stylegan2"], "vae": ["--recipe", "vae"],
           "ddpm": ["--recipe", "ddpm"]}  # cgan: the default `ganforge train`
N, SEED = 1000, 1


def train(runs_dir: Path, recipe: str, seed: int) -> tuple[Path, float | None]:
    run = runs_dir / f"{recipe}-s{seed}"
    if (run / "report.md").is_file():
        return run, None
    cmd = ["ganforge", "train", *RECIPES[recipe], "--seed", str(seed), "--out", str(run)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    print(f"command: {' '.join(cmd)}  wall {wall:.0f} s", flush=True)
    return run, wall


def sharpness(x: torch.Tensor) -> float:
    """Mean absolute Laplacian of images [N, 1, H, W] in [0, 1]."""
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    return float(F.conv2d(x.float().mean(1, keepdim=True), k).abs().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs-dir", type=Path, required=True)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--slow-sampler", action="store_true", help="also DDPM-1000 vs DDIM-50 at n=200")
    ap.add_argument("--out", type=Path, default=None, help="write compare.md / .json / .png here (default RUNS_DIR)")
    args = ap.parse_args()
    out = args.out or args.runs_dir
    runs, walls = [], {}
    for recipe in args.recipes.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run, wall = train(args.runs_dir, recipe, seed)
            runs.append(run)
            walls[run.name] = wall
    t0 = time.perf_counter()
    result = compare(runs, n=N, seed=SEED, grid=out / "compare.png")
    compare_s = time.perf_counter() - t0
    clf, acc, real_conf = fit_judge()
    real = load_dataset("digits", DataRequest(resolution=16, split="train")).x
    real_sharp = sharpness(real)
    print(f"judge: held-out accuracy {acc:.3f}, real held-out confident {real_conf:.3f}; real sharpness "
          f"{real_sharp:.4f}; compare took {compare_s:.0f} s")
    for row in result["rows"]:
        g = ganforge.load(row["run"])
        x, _ = g.draw(N, SEED)  # the samples compare measured (same seed)
        j = judge(clf, x)
        row.update(judge_confident=j["confident_frac"], judge_min_share=float(j["class_share"].min()),
                   judge_rarest=int(j["class_share"].argmin()), sharpness=sharpness(x) / real_sharp,
                   cli_wall_s=walls.get(Path(row["run"]).name))
    text = markdown(result)
    text += "\n## Independent judge and sharpness\n\n| run | confident (MLP) | rarest digit share | sharpness |\n"
    text += "| --- | --- | --- | --- |\n" + "".join(
        f"| {r['name']} | {r['judge_confident']:.3f} | {r['judge_min_share']:.3f} (digit {r['judge_rarest']}) | "
        f"{r['sharpness']:.2f} |\n" for r in result["rows"])
    slow = None
    if args.slow_sampler:
        first = [r for r in runs if r.name.endswith("-s" + args.seeds.split(",")[0])]
        slow = compare(first, n=200, seed=SEED, samplers="ddim-50,ddpm-1000", grid=out / "compare-slow.png")
        text += "\n# DDPM's 1,000-step sampler beside DDIM-50 (n = 200)\n\n" + markdown(slow)
    (out / "compare.md").write_text(text)
    (out / "compare.json").write_text(json.dumps({"main": result, "slow": slow, "compare_s": compare_s}, indent=1,
                                                 default=float))
    print(text)


if __name__ == "__main__":
    main()
