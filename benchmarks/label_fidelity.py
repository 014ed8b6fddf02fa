"""Benchmark (issue 5): label fidelity of the default conditional digits run.

Usage: python benchmarks/label_fidelity.py [--recipe cgan] [--run RUN_DIR] [-- extra train args]
Trains `ganforge train --recipe cgan --data digits` as a user would (unless --run is given),
draws 200 samples per requested digit, and reports how often the independent judge
(benchmarks/digit_judge.py) agrees with the requested label, per class. Target: >= 0.95 for
every class, training within 5 minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, flat16, train_as_user  # noqa: E402

import ganforge  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="cgan")
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=123)
    args, extra = ap.parse_known_args()
    run = args.run or train_as_user(["--recipe", args.recipe, "--data", "digits", *extra], "ganforge-fidelity-")
    clf, acc, _ = fit_judge()
    g = ganforge.load(run)
    rows = []
    for label in range(g.num_classes):
        x = g.sample(args.per_class, seed=args.seed + label, labels=label)
        rows.append(float((clf.predict(flat16(x)) == label).mean()))
    print(f"judge held-out accuracy {acc:.3f}")
    print("agreement per class: " + " ".join(f"{i}:{a:.3f}" for i, a in enumerate(rows)))
    print(f"min {min(rows):.3f}, mean {sum(rows) / len(rows):.3f} (target: every class >= 0.95)")


if __name__ == "__main__":
    main()
