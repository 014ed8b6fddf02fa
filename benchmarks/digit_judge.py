"""An independent digit judge for benchmarks: a scikit-learn MLP on the digits at 16x16.

It shares nothing with ganforge's own digits classifier (another model family and library,
trained here from scikit-learn's data directly), so a generator cannot score well by
fitting ganforge's feature extractor. Samples of any resolution are resized to 16x16.
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data import DataRequest, load_dataset


def train_as_user(train_args: list[str], prefix: str) -> Path:
    """Run ``ganforge train --out TMP <train_args>`` in a fresh process, as a user types it, and print the
    command and its wall time (start-up included); returns the run directory."""
    run = Path(tempfile.mkdtemp(prefix=prefix)) / "run"
    cmd = ["ganforge", "train", "--out", str(run), *[a for a in train_args if a != "--"]]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"command: {' '.join(cmd)}\nwall time: {time.perf_counter() - t0:.1f} s")
    return run


def flat16(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [0, 1] -> [N, 256] grey 16x16."""
    x = images.float().mean(1, keepdim=True)
    if x.shape[-1] != 16:
        x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=x.shape[-1] > 16)
    return x.flatten(1).numpy()


def fit_judge(seed: int = 0):
    """Train on the digits train split; returns (classifier, held-out accuracy, held-out confident share)."""
    from sklearn.neural_network import MLPClassifier

    train = load_dataset("digits", DataRequest(resolution=16, split="train"))
    test = load_dataset("digits", DataRequest(resolution=16, split="test"))
    clf = MLPClassifier((256,), alpha=1e-3, max_iter=400, random_state=seed).fit(flat16(train.x), train.y.numpy())
    acc = float(clf.score(flat16(test.x), test.y.numpy()))
    return clf, acc, judge(clf, test.x)["confident_frac"]


def judge(clf, images: torch.Tensor) -> dict:
    p = clf.predict_proba(flat16(images))
    conf, pred = p.max(1), p.argmax(1)
    return {
        "confident_frac": float((conf >= 0.9).mean()),
        "class_share": np.bincount(pred, minlength=10) / len(pred),
    }


def held_out_measures(run: Path, clf, n: int = 1000, seed: int = 5, test=None, train=None) -> dict:
    """A digits run's ``n`` samples (sample seed ``seed``) against held-out digits it never trained on (``test``,
    default the 360 test digits): fd, precision, recall, coverage in ganforge's digits features (and, given the
    ``train`` set, the copy check mem_copies); by the judge ``clf``: the confident share, the rarest digit's share
    and, when the run drew the digits it was asked for, the share read as asked."""
    import ganforge
    from ganforge.metrics import evaluate_samples

    g = ganforge.load(run)
    x, labels = g.draw(n, seed)
    if test is None:
        test = load_dataset("digits", DataRequest(resolution=x.shape[-1], split="test"))
    names = ["fd", "prdc"] + (["memorization"] if train is not None else [])
    ev = evaluate_samples(x, test, names, features="digits", seed=seed, train_set=train, held_out=test)
    p = clf.predict_proba(flat16(x))
    shares = np.bincount(p.argmax(1), minlength=10) / len(p)
    asked = labels is not None and g.spec.num_classes == 10 and not g.spec.clustered
    return {**{k: float(ev[k]) for k in ("fd", "precision", "recall", "coverage", "mem_copies") if k in ev},
            "confident": float((p.max(1) >= 0.9).mean()), "min_share": float(shares.min()),
            "as_asked": float((p.argmax(1) == labels.numpy()).mean()) if asked else float("nan")}


if __name__ == "__main__":  # python benchmarks/digit_judge.py RUN [RUN ...]: held-out measures of digits runs
    import json
    import sys

    clf, acc, real = fit_judge()
    print(f"judge: held-out accuracy {acc:.3f}, real held-out digits confident {real:.3f}")
    for run in sys.argv[1:]:
        print(run, json.dumps({k: round(v, 3) for k, v in held_out_measures(Path(run), clf).items()}))
