"""Benchmark (issue 5): does synthetic data from a conditional GAN help a classifier?

Usage: python benchmarks/augment.py [--seeds 5] [--gan-steps N] [--recipe cgan] [--threads 1]

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

import torch
import torch.nn as nn
import torch.nn.functional as F

import ganforge
from ganforge.data import DataRequest, load_dataset

RES = 16
CLF_STEPS, CLF_BATCH, CLF_LR = 400, 64, 2e-3
SYNTH_PER_CLASS = 100


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


def train_classifier(x: torch.Tensor, y: torch.Tensor, augment: bool, seed: int) -> SmallCNN:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=CLF_LR)
    for _ in range(CLF_STEPS):
        idx = torch.randint(len(x), (CLF_BATCH,), generator=gen)
        xb = classic_augment(x[idx], gen) if augment else x[idx]
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: SmallCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean()) * 100


def run_seed(seed: int, recipe: str, gan_steps: int | None, threads: int, test) -> dict[str, float]:
    train = load_dataset("digits", DataRequest(resolution=RES, split="train"))
    small = train.split(0.1, seed=seed)[0]
    cfg = {"recipe": recipe, "data": "digits", "resolution": RES, "data_fraction": 0.1, "seed": seed,
           "threads": threads, "out": tempfile.mkdtemp(prefix="ganforge-aug-") + "/run"}
    if gan_steps:
        cfg["steps"] = gan_steps
    run = ganforge.train(cfg, progress=False)  # the same 10 % (data_fraction uses the same stratified split)
    g = ganforge.load(run)
    labels = torch.arange(10).repeat_interleave(SYNTH_PER_CLASS)
    synth = g.sample(len(labels), seed=seed, labels=labels)
    both_x, both_y = torch.cat([small.x, synth]), torch.cat([small.y, labels])
    out = {
        "a real 10%": accuracy(train_classifier(small.x, small.y, False, seed), test.x, test.y),
        "b real + synthetic": accuracy(train_classifier(both_x, both_y, False, seed), test.x, test.y),
        "c synthetic only": accuracy(train_classifier(synth, labels, False, seed), test.x, test.y),
        "d real + classic aug": accuracy(train_classifier(small.x, small.y, True, seed), test.x, test.y),
        "e real + classic aug + synthetic": accuracy(train_classifier(both_x, both_y, True, seed), test.x, test.y),
        "ceiling: full real train": accuracy(train_classifier(train.x, train.y, True, seed), test.x, test.y),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--gan-steps", type=int, default=None, help="default: the recipe's preset")
    ap.add_argument("--recipe", default="cgan")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    test = load_dataset("digits", DataRequest(resolution=RES, split="test"))
    results: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for k, v in run_seed(seed, args.recipe, args.gan_steps, args.threads, test).items():
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
