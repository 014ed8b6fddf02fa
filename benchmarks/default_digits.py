"""Benchmark: the default `ganforge train` (DCGAN on bundled digits) - wall time and digit quality.

Usage: python benchmarks/default_digits.py [--run RUN_DIR] [-- extra train args]
Trains with the CLI exactly as a user would (unless --run points at an existing run), then
judges 1,000 samples with an independent classifier (benchmarks/digit_judge.py): the share
classified with confidence >= 0.9, and the share of each predicted digit.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, judge, train_as_user  # noqa: E402

import ganforge  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=None, help="judge this run instead of training one")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=123)
    args, extra = ap.parse_known_args()
    run = args.run or train_as_user(extra, "ganforge-bench-")
    clf, acc, real_conf = fit_judge()
    r = judge(clf, ganforge.load(run).sample(args.n, seed=args.seed))
    print(f"judge: held-out accuracy {acc:.3f}, real held-out confident share {real_conf:.3f}")
    print(f"generated: confident share {r['confident_frac']:.3f} (target >= 0.75)")
    print("predicted digit shares: " + " ".join(f"{i}:{s:.3f}" for i, s in enumerate(r["class_share"])),
          f"(min {r['class_share'].min():.3f}, target >= 0.04)")
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    speeds = [row["Timing/img_per_s"] for row in log if "Timing/img_per_s" in row]
    print(f"training speed: {sum(speeds) / len(speeds):.0f} images/s (mean over log intervals)")


if __name__ == "__main__":
    main()
