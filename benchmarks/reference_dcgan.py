"""ganforge against the widely used reference DCGAN script (PyTorch-GAN, implementations/dcgan/dcgan.py),
on the same architecture, data and batch.

Usage: python benchmarks/reference_dcgan.py [--steps 300] [--quality-steps 0] [--set key=value ...]

The reference's network and training loop are re-expressed here from its description (nothing
downloads; MNIST is replaced by the bundled digits at 28 px, which the reference's transform
resizes to 32 exactly as it does MNIST):
- G: Linear(100 -> 128 * 8 * 8), BatchNorm, [nearest x2, 3x3 conv, BatchNorm(eps 0.8), LeakyReLU 0.2] x2
  (128 -> 128 -> 64), 3x3 conv to 1 channel, tanh; D: four [3x3 stride-2 conv, LeakyReLU 0.2,
  Dropout2d 0.25, BatchNorm(eps 0.8) except the first] blocks (16, 32, 64, 128), Linear to one
  logit, sigmoid; N(0, 0.02) init of convs, N(1, 0.02) of batch-norm gains.
- Loop: a torchvision-style dataset (PIL image -> Resize(32) -> ToTensor -> Normalize(0.5, 0.5)) in a
  shuffled DataLoader of batch 64 (its default of no worker processes); per batch a G step on
  BCE(D(G(z)), 1), then a D step on (BCE(D(x), 1) + BCE(D(G(z).detach()), 0)) / 2, Adam 2e-4 / 0.5;
  both losses printed with .item() every batch and a 25-image grid saved every 400 batches.
ganforge trains the same two networks (D without its final sigmoid: the loss is BCE on logits,
the same function) with ``ganforge.train`` and its defaults (EMA, logging, health checks, grids,
checkpoints). Both are timed over the same number of steps in this process, one after the other.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

import ganforge
from ganforge.data import DataRequest, load_dataset
from ganforge.recipes import RECIPES, resolve
from ganforge.recipes.gan import GANRecipe

LATENT, SIZE, BATCH = 100, 32, 64


def init_normal(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class RefGenerator(nn.Module):
    def __init__(self, latent: int = LATENT, size: int = SIZE, channels: int = 1) -> None:
        super().__init__()
        self.s = size // 4
        self.fc = nn.Linear(latent, 128 * self.s * self.s)
        self.body = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2), nn.Conv2d(128, 128, 3, 1, 1), nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, True),
            nn.Upsample(scale_factor=2), nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(64, channels, 3, 1, 1), nn.Tanh())
        self.apply(init_normal)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(len(z), 128, self.s, self.s))


class RefDiscriminator(nn.Module):
    """Returns logits; ``sigmoid=True`` appends the reference's final sigmoid."""

    def __init__(self, size: int = SIZE, channels: int = 1, sigmoid: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip([channels, 16, 32, 64], [16, 32, 64, 128])):
            layers += [nn.Conv2d(a, b, 3, 2, 1), nn.LeakyReLU(0.2, True), nn.Dropout2d(0.25)]
            if i:
                layers.append(nn.BatchNorm2d(b, 0.8))
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(128 * (size // 16) ** 2, 1), *([nn.Sigmoid()] if sigmoid else []))
        self.apply(init_normal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1)).flatten()


@RECIPES.register("reference-dcgan")
class ReferenceArchitecture(GANRecipe):
    """ganforge's two-player game on the reference script's networks."""

    def build_nets(self) -> dict[str, nn.Module]:
        c, h, _ = self.data.shape
        return {"G": RefGenerator(self.latent_dim, h, c), "D": RefDiscriminator(h, c)}


def reference_loop(steps: int, seed: int = 0) -> float:
    """The reference script's loop, timed from its first batch; returns images per second."""
    import torchvision.transforms as T
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision.utils import save_image

    torch.manual_seed(seed)
    x28 = load_dataset("digits", DataRequest(resolution=28, split="train", channels=1)).x  # [N, 1, 28, 28]
    pil = [Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)) for img in x28]

    class Digits(Dataset):
        transform = T.Compose([T.Resize(SIZE), T.ToTensor(), T.Normalize([0.5], [0.5])])

        def __len__(self) -> int:
            return len(pil)

        def __getitem__(self, i: int):
            return self.transform(pil[i]), 0

    loader = DataLoader(Digits(), batch_size=BATCH, shuffle=True)
    G, D = RefGenerator(), RefDiscriminator(sigmoid=True)
    bce = nn.BCELoss()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    sink, out_dir = io.StringIO(), tempfile.mkdtemp(prefix="reference-dcgan-")
    done, t0 = 0, time.perf_counter()
    while done < steps:
        for imgs, _ in loader:
            valid, fake = torch.ones(len(imgs), 1).flatten(), torch.zeros(len(imgs), 1).flatten()
            opt_g.zero_grad()
            z = torch.tensor(np.random.normal(0, 1, (len(imgs), LATENT)), dtype=torch.float32)
            gen = G(z)
            g_loss = bce(D(gen), valid)
            g_loss.backward()
            opt_g.step()
            opt_d.zero_grad()
            d_loss = (bce(D(imgs), valid) + bce(D(gen.detach()), fake)) / 2
            d_loss.backward()
            opt_d.step()
            print(f"[Batch {done}] [D loss: {d_loss.item():f}] [G loss: {g_loss.item():f}]", file=sink)
            if done % 400 == 0:
                save_image(gen.data[:25], f"{out_dir}/{done}.png", nrow=5, normalize=True)
            done += 1
            if done >= steps:
                break
    seconds = time.perf_counter() - t0
    reference_loop.generator = G  # for the quality check
    return steps * BATCH / seconds


def ganforge_run(steps: int, sets: list[str]) -> tuple[float, Path]:
    out = Path(tempfile.mkdtemp(prefix="ganforge-refarch-")) / "run"
    cfg = resolve(flags={"recipe": "reference-dcgan", "steps": steps, "resolution": SIZE, "batch_size": BATCH,
                         "out": str(out)},
                  sets=["net.z_dim=100", "eval.final_n=0", *sets])
    ganforge.train(cfg, progress=False)
    from ganforge.train.logger import read_log

    seconds = [r["Timing/seconds"] for r in read_log(out) if "Timing/seconds" in r][-1]
    return steps * BATCH / seconds, out


def quality(x: torch.Tensor) -> dict:
    ev = ganforge.evaluate(images=x, data="digits", metrics=["fd", "prdc"], seed=1)
    return {k: round(float(ev[k]), 3) for k in ("fd", "precision", "recall", "coverage")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--set", action="append", default=[], help="ganforge config override (e.g. compile=true)")
    ap.add_argument("--quality", action="store_true", help="also measure fd/precision/recall/coverage at the end")
    ap.add_argument("--reference-img-s", type=float, default=None,
                    help="reuse a measured reference speed instead of running its loop again (not a same-run "
                         "ratio: prefer --repeats)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="alternate reference and ganforge this many times in this process and report medians, "
                         "so the ratio is measured side by side")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", file=sys.stderr)
    refs, ourss = [], []
    for _ in range(args.repeats):
        refs.append(args.reference_img_s or reference_loop(args.steps))
        ours, run = ganforge_run(args.steps, args.set)
        ourss.append(ours)
    if args.repeats > 1:
        pairs = sorted(o / r for o, r in zip(ourss, refs))
        print(f"alternated {args.repeats} times: reference img/s {[round(r) for r in refs]}, ganforge "
              f"{[round(o) for o in ourss]}; pairwise ratios {pairs[0]:.2f}-{pairs[-1]:.2f}")
    ref, ours = statistics.median(refs), statistics.median(ourss)
    print(f"| loop | steps | img/s | vs reference |\n| --- | --- | --- | --- |\n"
          f"| reference script (PyTorch-GAN dcgan) | {args.steps} | {ref:.0f} | 1.00 |\n"
          f"| ganforge train, same nets ({' '.join(args.set) or 'defaults'}) | {args.steps} | {ours:.0f} | "
          f"{ours / ref:.2f} |")
    if args.quality and not args.reference_img_s:
        with torch.no_grad():
            G = reference_loop.generator.eval()
            ref_x = torch.cat([((G(torch.randn(500, LATENT, generator=torch.Generator().manual_seed(i))) + 1) / 2)
                               .clamp(0, 1) for i in range(2)])
        print("reference quality (1,000 samples, digits features):", quality(ref_x))
        print("ganforge quality (EMA):", quality(ganforge.load(run).sample(1000, seed=1)))


if __name__ == "__main__":
    main()
