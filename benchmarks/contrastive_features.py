"""Calibration: would a self-supervised encoder judge a folder better than the random CNN? (issue 26, item 5)

Usage:
    python benchmarks/contrastive_features.py                 # digits, faces100, shapes
    python benchmarks/contrastive_features.py --sets faces100

For each bundled set the reference is its training images (what a run trained on), and against it are
measured: real images it never saw (near 0 is right), uniform noise, the held-out images blurred
(Gaussian, sigma = side / 16), their 4x4 patches shuffled, and the training images themselves
(copies: every space scores them as perfect; the memorisation check is what must catch them).
Up to 1,000 images per row. fd, precision, recall, coverage in each space. The contrastive encoder
(below; SimCLR's recipe in miniature: two random views of each image - a crop of 60-100 % of the side,
brightness and contrast jitter, a little noise - mapped together and away from the rest of the batch
by the NT-Xent loss, temperature 0.2, 300 steps of 128 images at 32 px, ~25 s on one core) is trained
on the reference images; the random CNN is ganforge's fixed one. Measured result (RESULTS.md): the
encoder separates broken images no better than the random CNN, so it did not become a ganforge
feature space; this script keeps the experiment reproducible.
"""
from __future__ import annotations

import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.data import DataRequest, Dataset, load_dataset
from ganforge.metrics import create_extractor, frechet_distance, prdc
from ganforge.metrics.features import _resize

SIZE = 32  # images are brought to 32 x 32
DIM = 128
TRAIN_STEPS, BATCH, TEMPERATURE, LR = 300, 128, 0.2, 2e-3


class Encoder(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        layers, c = [], channels
        for out in (32, 64, 128, DIM):
            layers += [nn.Conv2d(c, out, 3, 2, 1), nn.GroupNorm(8, out), nn.SiLU()]  # 32 -> 16 -> 8 -> 4 -> 2 px
            c = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(DIM, DIM), nn.SiLU(), nn.Linear(DIM, 64))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(_resize(x.float(), SIZE))


def views(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random view of each image: crop 60-100 % of the side anywhere, brightness/contrast jitter, noise."""
    n = len(x)
    scale = 0.6 + 0.4 * torch.rand(n, generator=gen)
    shift = (1 - scale)[:, None] * (torch.rand(n, 2, generator=gen) * 2 - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale, scale, shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    v = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    contrast = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=gen)
    bright = 0.2 * (torch.rand(n, 1, 1, 1, generator=gen) - 0.5)
    mean = v.mean((1, 2, 3), keepdim=True)
    v = (v - mean) * contrast + mean + bright
    return (v + 0.03 * torch.randn(v.shape, generator=gen)).clamp(0, 1)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """SimCLR's loss: each view must pick its partner among the 2n - 1 other views."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = len(a)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)


def train_encoder(x: torch.Tensor, steps: int = TRAIN_STEPS, seed: int = 0) -> Encoder:
    """An encoder trained on images ``x`` [N, C, H, W] in [0, 1] (brought to 32 px), seeded."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = _resize(x.float(), SIZE)
    net = Encoder(x.shape[1])
    opt = torch.optim.Adam(net.parameters(), LR)
    for _ in range(steps):
        batch = x[torch.randint(len(x), (min(BATCH, max(len(x), 2)),), generator=gen)]
        loss = nt_xent(net(views(batch, gen)), net(views(batch, gen)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval().requires_grad_(False)



SETS = {"digits": ("digits", 16), "faces100": ("faces100", 32), "shapes": ("shapes:2000", 32)}


def blur(x: torch.Tensor) -> torch.Tensor:
    sigma = x.shape[-1] / 16
    r = int(3 * sigma)
    k = torch.exp(-(torch.arange(-r, r + 1).float() ** 2) / (2 * sigma**2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def shuffle_patches(x: torch.Tensor, grid: int = 4, seed: int = 0) -> torch.Tensor:
    n, c, h, w = x.shape
    p = h // grid
    patches = x.unfold(2, p, p).unfold(3, p, p).reshape(n, c, grid * grid, p, p)
    g = torch.Generator().manual_seed(seed)
    perm = torch.stack([torch.randperm(grid * grid, generator=g) for _ in range(n)])
    patches = patches[torch.arange(n)[:, None], :, perm].permute(0, 2, 1, 3, 4)  # [n, c, g*g, p, p]
    return patches.reshape(n, c, grid, grid, p, p).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def split(name: str) -> tuple[Dataset, torch.Tensor]:
    spec, res = SETS[name]
    train = load_dataset(spec, DataRequest(resolution=res, split="train"))
    if name == "shapes":  # its test split holds out colour-shape pairs (another distribution): split the train
        return Dataset("shapes-ref", train.x[:1000]), train.x[1000:2000]
    return train, load_dataset(spec, DataRequest(resolution=res, split="test")).x


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    for name in args.sets.split(","):
        ref, held = split(name)
        g = torch.Generator().manual_seed(0)
        cases = {"held-out real": held, "uniform noise": torch.rand(held[:1000].shape, generator=g),
                 "blurred held-out": blur(held), "shuffled patches": shuffle_patches(held),
                 "training images (copies)": ref.x[:1000]}
        encoder = train_encoder(ref.x)
        spaces = {"random-cnn": create_extractor("random-cnn"), "contrastive": encoder.features}
        if name == "digits":
            spaces["digits"] = create_extractor("digits")
        for space, embed in spaces.items():
            real = embed(ref.x[:1000])
            for case, x in cases.items():
                fake = embed(x[:1000].clamp(0, 1))
                ev = {"fd": frechet_distance(fake, real), **prdc(real, fake)}
                rows.append({"set": name, "space": space, "case": case,
                             **{k: round(float(ev[k]), 4) for k in ("fd", "precision", "recall", "coverage")}})
                print(json.dumps(rows[-1]), flush=True)
    print("| set | features | case | fd | precision | recall | coverage |\n| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['set']} | {r['space']} | {r['case']} | {r['fd']:.3f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['coverage']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
