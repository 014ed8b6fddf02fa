"""Benchmark: wall time of `evaluate_samples` on 10,000 digits (fd, kid, prdc, classes).

Usage: python benchmarks/eval_speed.py [--n 10000] [--threads N] [--repeats 3]

The "generated" set is the digits test split repeated to N samples with fresh Gaussian
noise (std 0.1) on every copy; the reference is the train split under the `digits`
extractor. The first call fills the reference-statistics cache (timed separately, in a
temporary cache directory); the reported time is a call with the reference cached, which
is the case during training and repeated evaluation. Target: <= 30 s on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from ganforge.data import DataRequest, load_dataset
from ganforge.metrics import evaluate_samples

METRICS = ["fd", "kid", "prdc", "classes"]


def fake_digits(n: int, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    test = load_dataset("digits", DataRequest(split="test")).x
    g = torch.Generator().manual_seed(seed)
    x = test.repeat((n + len(test) - 1) // len(test), 1, 1, 1)[:n]
    return (x + noise * torch.randn(x.shape, generator=g)).clamp(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    real = load_dataset("digits", DataRequest(split="train"))
    fake = fake_digits(args.n)
    print(f"{args.n} generated digits vs {len(real)} real (train split); metrics {', '.join(METRICS)}; "
          f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load avg {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        evaluate_samples(fake, real, METRICS, seed=0, split="train", cache_dir=cache)
        print(f"first call (computes and caches reference statistics): {time.perf_counter() - t0:.2f} s")
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = evaluate_samples(fake, real, METRICS, seed=0, split="train", cache_dir=cache)
            times.append(time.perf_counter() - t0)
            assert res["protocol"]["reference_cached"]
    print("results: " + ", ".join(f"{k}={v:.4g}" for k, v in res.items() if k != "protocol"))
    print(f"cached-reference evaluation: best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
          f"over {len(times)} runs (target <= 30 s)")


if __name__ == "__main__":
    main()
