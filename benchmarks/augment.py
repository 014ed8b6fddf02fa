"""Benchmark (issue 5): does synthetic data from a conditional GAN help a classifier?

Usage: python benchmarks/augment.py [--seeds 5] [--gan-steps N] [--recipe cgan] [--threads 1] [--runs DIR]
       (--runs keeps the GAN runs there and reuses finished ones, so classifier settings can be re-measured
        without retraining the GANs)

Bundled digits at 16x16, the fixed held-out test split (360 images). Low-data regime: a
stratified 10 % of the training split (about 14 images per class), drawn per seed. A small
CNN is trained with identical settings (optimizer, steps, batch) on:
  (a) real 10 %                         (b) real 10 % + cGAN samples (cGAN trained on that 10 %)
  (c) synthetic only                    (d) real 10 % + classic augmentation (shifts, rotations)
  (e) (d) + synthetic                   ceiling: the full real training split
Accuracy on the real test split, mean and std over seeds. Targets: (b) - (a) >= 1.5 points,
(e) - (d) >= 1.5 points, (c) >= 0.9 * (a).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import ganforge
from ganforge.data import DataRequest, load_dataset
from ganforge.recipes import resolve

RES = 16
CLF_STEPS, CLF_BATCH, CLF_LR = 400, 64, 2e-3
SYNTH_PER_CLASS = 100
CLF_REPEATS = 3
SYNTH_SHARE = 0.5  # with synthetic data, this share of every classifier batch is synthetic, the rest real


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def classic_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 px and rotations of up to 10 degrees, per image (affine grid)."""
    n = len(x)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * (10 * torch.pi / 180)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 * 2 / RES)  # 2 px in [-1, 1] grid units
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def train_classifier(x: torch.Tensor, y: torch.Tensor, augment: bool, seed: int,
                     synthetic: tuple[torch.Tensor, torch.Tensor] | None = None,
                     share: float = SYNTH_SHARE) -> SmallCNN:
    """Adam on batches of ``x``; with ``synthetic`` (images, labels), ``share`` of every batch is drawn from it,
    so a few real images are not drowned by many synthetic ones. Classic augmentation applies to the whole batch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=CLF_LR)
    n_synth = round(CLF_BATCH * share) if synthetic is not None else 0
    for _ in range(CLF_STEPS):
        idx = torch.randint(len(x), (CLF_BATCH - n_synth,), generator=gen)
        xb, yb = x[idx], y[idx]
        if n_synth:
            sdx = torch.randint(len(synthetic[0]), (n_synth,), generator=gen)
            xb, yb = torch.cat([xb, synthetic[0][sdx]]), torch.cat([yb, synthetic[1][sdx]])
        xb = classic_augment(xb, gen) if augment else xb
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: SmallCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean()) * 100


def gan_run(seed: int, recipe: str, gan_steps: int | None, sets: list[str], threads: int, runs: Path) -> Path:
    """The conditional GAN of this seed, trained on the same 10 % (data_fraction uses the same stratified split);
    a finished run of the same settings under ``runs`` is reused."""
    out = runs / "-".join([recipe, str(gan_steps or "preset"), *sets, f"seed{seed}"]).replace("/", "_")
    if (out / "checkpoints" / "latest.json").is_file() and (out / "report.md").is_file():
        return out
    cfg = {"recipe": recipe, "data": "digits", "resolution": RES, "data_fraction": 0.1, "seed": seed,
           "threads": threads, "out": str(out)}
    if gan_steps:
        cfg["steps"] = gan_steps
    return ganforge.train(resolve(cfg, sets=sets), progress=False)


def run_seed(seed: int, run: Path, test, per_class: int, share: float) -> dict[str, float]:
    """Test accuracy of each condition, averaged over CLF_REPEATS classifier initializations (the test split
    has 360 images: one image is 0.28 points, and a single classifier's seed moves the result by about one point)."""
    train = load_dataset("digits", DataRequest(resolution=RES, split="train"))
    small = train.split(0.1, seed=seed)[0]
    labels = torch.arange(10).repeat_interleave(per_class)
    synth = (ganforge.load(run).sample(len(labels), seed=seed, labels=labels), labels)
    conditions = {  # name -> (images, labels, classic augmentation, synthetic share of each batch)
        "a real 10%": (small.x, small.y, False, None),
        "b real + synthetic": (small.x, small.y, False, synth),
        "c synthetic only": (*synth, False, None),
        "d real + classic aug": (small.x, small.y, True, None),
        "e real + classic aug + synthetic": (small.x, small.y, True, synth),
        "ceiling: full real train": (train.x, train.y, True, None),
    }
    return {name: statistics.mean(accuracy(train_classifier(x, y, aug, 1000 * seed + r, extra, share), test.x, test.y)
                                  for r in range(CLF_REPEATS))
            for name, (x, y, aug, extra) in conditions.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--gan-steps", type=int, default=None, help="default: the recipe's preset")
    ap.add_argument("--recipe", default="cgan")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    ap.add_argument("--gan-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra GAN setting, as `ganforge train --set` (repeatable)")
    ap.add_argument("--per-class", type=int, default=SYNTH_PER_CLASS, help="synthetic images per class")
    ap.add_argument("--synthetic-share", type=float, default=SYNTH_SHARE, help="synthetic share of each batch")
    ap.add_argument("--runs", type=Path, default=None, help="keep (and reuse) the GAN runs here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    test = load_dataset("digits", DataRequest(resolution=RES, split="test"))
    results: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    runs = args.runs or Path(tempfile.mkdtemp(prefix="ganforge-aug-"))
    for seed in range(args.seeds):
        run = gan_run(seed, args.recipe, args.gan_steps, args.gan_set, args.threads, runs)
        for k, v in run_seed(seed, run, test, args.per_class, args.synthetic_share).items():
            results.setdefault(k, []).append(v)
        print(f"seed {seed}: " + ", ".join(f"{k.split()[0]} {v[-1]:.1f}" for k, v in results.items()), flush=True)
    print(f"\n{args.seeds} seeds, {time.perf_counter() - t0:.0f} s; test accuracy % (mean +- std)\n")
    print("| condition | accuracy |\n| --- | --- |")
    mean = {}
    for k, v in results.items():
        mean[k] = statistics.mean(v)
        std = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"| {k} | {mean[k]:.2f} +- {std:.2f} |")
    a, b, c, d, e = (mean[k] for k in list(mean)[:5])
    print(f"\n(b)-(a) = {b - a:+.2f} (target >= +1.5); (e)-(d) = {e - d:+.2f} (target >= +1.5); "
          f"(c)/(a) = {c / a:.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
