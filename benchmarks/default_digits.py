"""Benchmark: the default `ganforge train` on the bundled digits - quality, diversity, balance, wall time.

Usage:
    python benchmarks/default_digits.py                          # the default, seeds 0,1,2
    python benchmarks/default_digits.py --candidates default,plain --seeds 0,1,2 --json out.json
    python benchmarks/default_digits.py --run RUN_DIR            # judge an existing run
    python benchmarks/default_digits.py --from-json a.json b.json  # print the table of earlier results

Each candidate is trained with the CLI exactly as a user types it (``ganforge train --seed S
ARGS``, in a fresh process, wall time including start-up), then 1,000 samples (seed 1) are
measured two ways:
- ganforge's digits feature space, against the training split: fd, precision, recall, coverage;
- an independent classifier (benchmarks/digit_judge.py): the share of samples classified with
  confidence >= 0.9 and the smallest share of any predicted digit.
Issue 16's targets for the default (every seed): wall <= 180 s, fd <= 8, recall >= 0.6,
coverage >= 0.4, precision >= 0.6, confident >= 0.75, every digit >= 5 %.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, judge, train_as_user  # noqa: E402

import ganforge  # noqa: E402

N_SAMPLES, SAMPLE_SEED = 1000, 1
# name -> extra `ganforge train` arguments (the default preset is configs/dcgan/digits.yaml)
CANDIDATES: dict[str, list[str]] = {
    "default": [],
    "infogan12": ["--recipe", "dcgan", "--set", "net.z_discrete=12", "--set", "reg.info=1", "--set", "reg.mbstd=4",
                  "--set", "reg.r1=0", "--set", "augment=", "--set", "optim.lr_decay=none"],
    "plain": ["--recipe", "dcgan", "--set", "net.z_discrete=0", "--set", "reg.info=0", "--set", "reg.mbstd=0",
              "--set", "reg.r1=0", "--set", "augment=", "--set", "optim.lr_decay=none"],
    "cgan": ["--recipe", "cgan"],
    "projection": ["--recipe", "projection"],
    "acgan": ["--recipe", "acgan"],
    "stylegan2": ["--recipe", "stylegan2"],
}
TARGETS = {"wall_s": ("<=", 180), "fd": ("<=", 8.0), "recall": (">=", 0.6), "coverage": (">=", 0.4),
           "precision": (">=", 0.6), "confident": (">=", 0.75), "min_share": (">=", 0.05)}
COLUMNS = ["wall_s", "fd", "precision", "recall", "coverage", "confident", "min_share"]


def measure(run: Path, clf, sample_seed: int = SAMPLE_SEED) -> dict:
    g = ganforge.load(run)
    x, labels = g.draw(N_SAMPLES, sample_seed)
    ev = ganforge.evaluate(images=x, data="digits", metrics=["fd", "prdc"], seed=sample_seed)
    j = judge(clf, x)
    shares = j["class_share"]
    return {"fd": ev["fd"], "precision": ev["precision"], "recall": ev["recall"], "coverage": ev["coverage"],
            "density": ev["density"], "confident": j["confident_frac"], "min_share": float(shares.min()),
            "rarest_digit": int(shares.argmin()), "shares": [round(float(s), 4) for s in shares]}


def meets(row: dict) -> bool:
    return all((row[k] <= v) if op == "<=" else (row[k] >= v) for k, (op, v) in TARGETS.items() if k in row)


def table(rows: list[dict]) -> str:
    head = "| candidate | seed | " + " | ".join(COLUMNS) + " | rarest | all targets |"
    lines = [head, "|" + " --- |" * (len(COLUMNS) + 4)]
    for r in rows:
        vals = " | ".join(f"{r[c]:.3f}" if c != "wall_s" else f"{r[c]:.0f}" for c in COLUMNS)
        ok = "yes" if meets(r) else "no"
        lines.append(f"| {r['candidate']} | {r['seed']} | {vals} | {r['rarest_digit']} | {ok} |")
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["candidate"], []).append(r)
    for name, rs in by.items():
        if len(rs) > 1:
            mean = {c: sum(r[c] for r in rs) / len(rs) for c in COLUMNS}
            worst = {c: (max if TARGETS[c][0] == "<=" else min)(r[c] for r in rs) for c in COLUMNS}
            lines.append(f"| **{name} mean** | {len(rs)} | " + " | ".join(
                f"{mean[c]:.3f}" if c != "wall_s" else f"{mean[c]:.0f}" for c in COLUMNS) + " | | |")
            lines.append(f"| **{name} worst** | | " + " | ".join(
                f"{worst[c]:.3f}" if c != "wall_s" else f"{worst[c]:.0f}" for c in COLUMNS)
                + f" | | {'yes' if all(meets(r) for r in rs) else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=None, help="judge this existing run instead of training")
    ap.add_argument("--candidates", default="default", help="comma-separated names of CANDIDATES")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sample-seed", type=int, default=SAMPLE_SEED, help="seed of the 1,000 measured samples")
    ap.add_argument("--json", type=Path, default=None, help="append the rows to this JSON file")
    ap.add_argument("--from-json", nargs="+", type=Path, default=None, help="print the table of saved rows")
    args, extra = ap.parse_known_args()
    if args.from_json:
        print(table([r for p in args.from_json for r in json.loads(p.read_text())]))
        return
    clf, acc, real_conf = fit_judge()
    print(f"judge: held-out accuracy {acc:.3f}, real held-out confident share {real_conf:.3f}")
    rows: list[dict] = json.loads(args.json.read_text()) if args.json and args.json.is_file() else []
    if args.run:
        row = {"candidate": str(args.run), "seed": -1, "wall_s": float("nan"),
               **measure(args.run, clf, args.sample_seed)}
        print(json.dumps(row, indent=1))
        return
    for name in args.candidates.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.perf_counter()
            run = train_as_user([*CANDIDATES[name], "--seed", str(seed), *extra], f"ganforge-{name}-")
            wall = time.perf_counter() - t0
            row = {"candidate": name, "seed": seed, "wall_s": wall, "args": " ".join(CANDIDATES[name] + extra),
                   "sample_seed": args.sample_seed, **measure(run, clf, args.sample_seed)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
