"""Benchmark: fine-tuning from a trained run vs training from scratch on 100 images of another set (issue 26).

Usage:
    python benchmarks/finetune.py                        # seeds 7,8; 1,000 steps each
    python benchmarks/finetune.py --steps 500 --seeds 7

The new set: 100 typeset digits (10 per digit, Pillow's font, digits2typeset's train renders) written as
a folder with one subfolder per digit. Candidates, each trained with the CLI as a user types it, for the
same steps:
- scratch:      ganforge train --data folder:T --recipe cgan
- finetune:     ganforge train --data folder:T --init-from pretrained:digits    (the shipped default run)
- finetune+fd1, finetune+fd2: the same with --freeze-d 1 or 2 (FreezeD: D's first weight layers frozen)
and without labels (the same 100 images in one flat folder), the folder default (selfcond):
- flat-scratch (2 clusters for 100 images), flat-scratch-k28 (28 clusters, as the fine-tuned run gets),
- flat-finetune: --init-from pretrained:digits-unlabelled (the folder default trained on the digits).
Measured on 1,000 samples (sample seed 5) against 500 held-out typeset digits (digits2typeset's test
renders) in ganforge's digits features (fd, precision, recall, coverage), by a judge the project does not
ship (a scikit-learn MLP trained on 2,000 typeset digits rendered from another seed): the share of samples
read confidently, the rarest digit's share and the share read as the digit asked for; and the copy check
against the 100 training images.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import flat16, held_out_measures, train_as_user  # noqa: E402

from ganforge.data import Dataset  # noqa: E402
from ganforge.data.translation import typeset_digits  # noqa: E402

FOLDER = Path("/tmp/ganforge-typeset100")  # one subfolder per digit
FLAT = Path("/tmp/ganforge-typeset100-flat")  # the same 100 images, no labels
CANDIDATES = {  # name -> (folder, `ganforge train` arguments)
    "scratch": (FOLDER, ["--recipe", "cgan", "--set", "net.width=32"]),  # the architecture of pretrained:digits
    "finetune": (FOLDER, ["--init-from", "pretrained:digits"]),
    "finetune+fd1": (FOLDER, ["--init-from", "pretrained:digits", "--freeze-d", "1"]),
    "finetune+fd2": (FOLDER, ["--init-from", "pretrained:digits", "--freeze-d", "2"]),
    # unlabelled: the folder default from scratch (2 clusters for 100 images) vs from the unlabelled digits run
    "flat-scratch": (FLAT, []),
    "flat-scratch-k10": (FLAT, ["--set", "clusters.k=10"]),
    "flat-scratch-k28": (FLAT, ["--set", "clusters.k=28"]),  # the clusters the fine-tuned run gets
    "flat-finetune": (FLAT, ["--init-from", "pretrained:digits-unlabelled"]),
}


def write_folders() -> Dataset:
    x, y = typeset_digits("train", 16, per_class=10)
    if not FOLDER.is_dir():
        FLAT.mkdir(parents=True)
        for i, (img, label) in enumerate(zip(x, y)):
            (FOLDER / str(int(label))).mkdir(parents=True, exist_ok=True)
            png = Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8), "L")
            png.save(FOLDER / f"{label}/{i:03d}.png")
            png.save(FLAT / f"{i:03d}.png")
    return Dataset("typeset100", x, y, class_names=[str(i) for i in range(10)])


def fit_typeset_judge():
    from sklearn.neural_network import MLPClassifier

    x, y = typeset_digits("train", 16, per_class=200, seed=9)
    return MLPClassifier((256,), alpha=1e-3, max_iter=400, random_state=0).fit(flat16(x), y.numpy())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--seeds", default="7,8")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    train = write_folders()
    tx, ty = typeset_digits("test", 16, per_class=50)
    test = Dataset("typeset-test", tx, ty, class_names=train.class_names)
    clf = fit_typeset_judge()
    print(f"judge on the held-out typeset digits: accuracy {clf.score(flat16(tx), ty.numpy()):.3f}")
    rows = []
    for name in args.candidates.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.perf_counter()
            folder, extra = CANDIDATES[name]
            run = train_as_user(["--data", f"folder:{folder}", *extra, "--steps", str(args.steps),
                                 "--seed", str(seed)], f"ganforge-ft-{name}-")
            rows.append({"candidate": name, "seed": seed, "steps": args.steps, "wall_s": time.perf_counter() - t0,
                         **held_out_measures(run, clf, test=test, train=train)})
            print(json.dumps(rows[-1]), flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    cols = ["wall_s", "fd", "precision", "recall", "coverage", "mem_copies", "confident", "min_share", "as_asked"]
    print("| candidate | seed | " + " | ".join(cols) + " |\n|" + " --- |" * (len(cols) + 2))
    for r in rows:
        print(f"| {r['candidate']} | {r['seed']} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
