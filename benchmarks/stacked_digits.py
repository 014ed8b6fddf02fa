"""Benchmark: stacked digits (the bundled analogue of Stacked MNIST, 1,000 modes) - DCGAN against
ganforge's anti-collapse configurations at the same CPU budget.

Usage:
    python benchmarks/stacked_digits.py                         # dcgan and pacgan2, seed 0
    python benchmarks/stacked_digits.py --methods dcgan,pacgan2,best --steps 6000 --seeds 0,1
    python benchmarks/stacked_digits.py --methods lsgan --resolution 16

Protocol (PacGAN, Lin et al. 2018, after Metz et al. 2017): generate 26,000 samples, classify
each channel with the digits classifier (metrics/digits_classifier.py, 100 % on the training
digits), count the distinct (R, G, B) digit triples among 1,000 and compute KL(generated class
histogram || uniform). A perfect sampler scores 1,000 modes and KL about 0.02 at 26,000 samples
(sampling noise alone); the real-data row shows it. Every method trains the same DCGAN at 8x8
(the digits' own resolution; --resolution changes it for all) for the same number of steps with
the same batch, on one CPU thread.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

import ganforge
from ganforge.data import DataRequest, load_dataset
from ganforge.data.digits import digits_tensor
from ganforge.data.images import resize, take_split
from ganforge.data.stacked_digits import stack_triples
from ganforge.metrics.digits_classifier import classify
from ganforge.recipes import resolve

N_SAMPLES = 26_000
BASE = {"recipe": "dcgan", "data": "stacked-digits", "resolution": 8, "batch_size": 64, "threads": 1,
        "log_every": 500, "sample_every": 10**9, "checkpoint_every": 10**9}
METHODS: dict[str, tuple[str, dict]] = {
    "dcgan": ("DCGAN (non-saturating, Radford et al.)", {}),
    "pacgan2": ("PacDCGAN2 (reg.pack=2)", {"reg.pack": 2}),
    "best": ("ganforge anti-collapse: pack 2 + minibatch std + R1 + linear lr decay",
             {"reg.pack": 2, "reg.mbstd": 4, "reg.r1": 0.1, "reg.lazy_every": 4, "optim.lr_decay": "linear"}),
    "code": ("ganforge: 1,000-way InfoGAN code + minibatch std + linear lr decay",
             {"net.z_discrete": 1000, "reg.info": 1.0, "reg.mbstd": 4, "optim.lr_decay": "linear"}),
    "ttur": ("ganforge: TTUR (lr_d 4e-4) + batch 128 + minibatch std + linear lr decay",
             {"optim.lr_d": 4e-4, "batch_size": 128, "reg.mbstd": 4, "optim.lr_decay": "linear"}),
    "batch256": ("DCGAN, batch 256", {"batch_size": 256}),
    "hinge-sn": ("hinge loss + spectral norm in D", {"loss": "hinge", "reg.spectral_norm": True}),
    "lsgan": ("least-squares loss (LSGAN)", {"loss": "lsgan"}),
    "lsgan-decay": ("LSGAN + linear lr decay", {"loss": "lsgan", "optim.lr_decay": "linear"}),
}
PUBLISHED = [("DCGAN (PacGAN Table 2, Stacked MNIST)", 99, 3.40), ("PacDCGAN2 (PacGAN Table 2)", 1000, 0.06)]


def triple_labels(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] in [0, 1] -> [N] class 100a + 10b + c from the digits classifier, channel by channel."""
    digits = [classify(images[:, c : c + 1])[0].argmax(1) for c in range(3)]
    return digits[0] * 100 + digits[1] * 10 + digits[2]


def mode_stats(labels: torch.Tensor) -> dict[str, float]:
    counts = torch.bincount(labels, minlength=1000).double()
    p = counts / counts.sum()
    nz = p[p > 0]
    return {"modes": int((counts > 0).sum()), "kl": float((nz * torch.log(nz * 1000)).sum())}


def real_reference(resolution: int) -> dict[str, float]:
    """26,000 fresh triples of training digits, through the same classifier: the perfect sampler's score."""
    x, y = digits_tensor()
    idx = take_split(len(y), "train", labels=y, seed=0)
    images, _ = stack_triples(resize(x[idx], resolution), y[idx], N_SAMPLES, seed=12345)
    return mode_stats(triple_labels(images))


def run_one(method: str, steps: int, seed: int, root: Path, resolution: int) -> dict:
    out = root / f"{method}-{seed}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = resolve(dict(BASE, **METHODS[method][1], steps=steps, seed=seed, out=str(out), resolution=resolution))
    t0 = time.perf_counter()
    ganforge.train(cfg, progress=False)
    seconds = time.perf_counter() - t0
    x = ganforge.load(out).sample(N_SAMPLES, seed=10_000 + seed)
    return {"method": method, "seed": seed, "steps": steps, "resolution": resolution, "seconds": seconds,
            **mode_stats(triple_labels(x))}


def _ms(values: list[float], fmt: str) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.mean(values), fmt)} ± {format(sd, fmt)}"


def table(results: list[dict], ref: dict[str, float]) -> str:
    lines = ["| method | modes (of 1000) | KL to uniform | steps | wall s / run |", "|---|---|---|---|---|"]
    for method, (label, _) in METHODS.items():
        rs = [r for r in results if r["method"] == method]
        if rs:
            lines.append(f"| {label} | {_ms([r['modes'] for r in rs], '.0f')} | {_ms([r['kl'] for r in rs], '.2f')} | "
                         f"{rs[0]['steps']} | {_ms([r['seconds'] for r in rs], '.0f')} |")
    lines.append(f"| real training digits (26,000 fresh triples) | {ref['modes']} | {ref['kl']:.3f} | - | - |")
    for label, modes, kl in PUBLISHED:
        lines.append(f"| *published:* {label} | {modes} | {kl} | GPU, MNIST 28x28 | - |")
    lines += ["", "Protocol differences: scikit-learn's 8x8 digits (1,437 training images) instead of MNIST; "
              "26,000 samples as PacGAN; a CPU budget of the given steps instead of training to convergence; "
              "the classifier is ganforge's digits classifier, not PacGAN's MNIST one."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="dcgan,pacgan2", help=f"comma-separated: {', '.join(METHODS)}")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--resolution", type=int, default=BASE["resolution"], help="8 (the digits' own) or e.g. 16")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep run directories under this folder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = args.keep or Path(tempfile.mkdtemp(prefix="ganforge-stacked-"))
    t0, results = time.perf_counter(), []
    for method in args.methods.split(","):
        if method not in METHODS:
            raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        for seed in (int(s) for s in args.seeds.split(",")):
            r = run_one(method, args.steps, seed, root, args.resolution)
            results.append(r)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}), flush=True)
    ref = real_reference(args.resolution)
    print("\n" + table(results, ref))
    print(f"\ntotal: {(time.perf_counter() - t0) / 60:.1f} min; {os.cpu_count()} CPUs, load average at the end "
          f"{os.getloadavg()[0]:.1f}; dataset: {len(load_dataset('stacked-digits', DataRequest(resolution=8)))} "
          "training images")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
