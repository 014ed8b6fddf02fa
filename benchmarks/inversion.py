"""Projection and editing on the digits (issue 30): real digits projected into a trained run, judged by an
independent classifier, beside the strongest trivial baseline; generated images recovered; class edits.

    python benchmarks/inversion.py RUN --split test            # the headline: the 360 held-out digits
    python benchmarks/inversion.py RUN --split train --n 60    # choosing defaults (never the test split)

Judge: benchmarks/digit_judge.py (a scikit-learn MLP sharing nothing with ganforge's classifier, whose
features the projection's loss uses). Baseline: the nearest of ``--pool`` generated samples to each real
digit by the same perceptual distance (what a user gets without projection: search the samples). Timing: one
image at a time, as ``ganforge project`` does, and the batch used for the rest; 2 torch threads.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from digit_judge import fit_judge, flat16

import ganforge
from ganforge.data import DataRequest, load_dataset
from ganforge.inference.directions import Direction, direction_named
from ganforge.inference.perceptual import perceptual_for


def traits(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per grey image [N, 1, H, W] in [0, 1]: stroke width (ink pixels over skeleton pixels, ink > 0.5) and
    slant (the intensity-weighted shear moment mu11 / mu02: > 0 leans right)."""
    from skimage.morphology import skeletonize

    x = images[:, 0].numpy()
    ink = x > 0.5
    width = np.array([a.sum() / max(1, skeletonize(a).sum()) for a in ink])
    h, w = x.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w]
    m = x / np.maximum(x.sum((1, 2), keepdims=True), 1e-8)
    xb, yb = (m * xs).sum((1, 2), keepdims=True), (m * ys).sum((1, 2), keepdims=True)
    mu11 = (m * (xs - xb) * (yb - ys)).sum((1, 2))  # y grows downwards: flip it so a right lean is positive
    mu02 = (m * (ys - yb) ** 2).sum((1, 2))
    return width, mu11 / np.maximum(mu02, 1e-8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--split", default="test", choices=["train", "test"])
    ap.add_argument("--n", type=int, default=0, help="images (0: the whole split's first 360 / all test)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--strengths", default="1,1.5,2,2.5,3")
    ap.add_argument("--chosen", type=float, default=2.0, help="the strength the edit figures are reported at")
    ap.add_argument("--recover", type=int, default=100, help="generated images to recover (known latents)")
    ap.add_argument("--timed", type=int, default=5, help="images projected one at a time for the timing")
    ap.add_argument("--pool", type=int, default=2000, help="generated samples the baseline searches")
    ap.add_argument("--layers", default=None, help="style layers the class edits move (default all)")
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    ap.add_argument("--figure", default=None, help="PNG: per image, the target, its projection, then the class edit "
                                                   "at each strength (the first 8 images)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    g = ganforge.load(a.run)
    data = load_dataset("digits", DataRequest(resolution=g.spec.shape[-1], split=a.split))
    n = a.n or min(len(data.x), 360)
    pick = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(5))[:n] if a.split == "train" \
        else torch.arange(n)
    x, y = data.x[pick], data.y[pick].numpy()
    clf, acc, _ = fit_judge(0)
    dist = perceptual_for(g.spec)
    res: dict = {"run": a.run, "split": a.split, "images": n, "steps": a.steps,
                 "judge": f"independent sklearn MLP, held-out accuracy {acc:.3f}",
                 "loss": dist.describe, "judge_on_the_real_images": float((clf.predict(flat16(x)) == y).mean())}

    # the trivial baseline: the nearest generated sample
    pool = g.sample(a.pool, seed=123)
    with torch.no_grad():
        d = torch.stack([dist(x[i : i + 1].expand(len(pool), -1, -1, -1), pool) for i in range(n)])  # [n, pool]
    nearest = pool[d.argmin(1)]
    res["baseline_nearest_sample"] = {
        "same_digit": float((clf.predict(flat16(nearest)) == y).mean()),
        "psnr_db": float(ganforge.inference.inversion.psnr(nearest, x).mean()),
        "perceptual_distance": float(d.min(1).values.mean())}

    # timing: one image at a time, as the command does
    times = []
    for i in range(a.timed):
        t0 = time.perf_counter()
        g.project(x[i], steps=a.steps, seed=0)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    found = g.project(x, steps=a.steps, seed=0)
    batch_s = time.perf_counter() - t0
    images = torch.stack([p.image for p in found])
    read = clf.predict(flat16(images))
    res["projection"] = {
        "space": found[0].space, "same_digit": float((read == y).mean()),
        "psnr_db_mean": statistics.mean(p.psnr for p in found),
        "psnr_db_median": statistics.median(p.psnr for p in found),
        "perceptual_distance_mean": statistics.mean(p.distance for p in found),
        "seconds_per_image_alone_median": statistics.median(times) if times else None,
        "seconds_per_image_in_batch": batch_s / n}
    if found[0].label is not None:
        res["projection"]["class_found_equals_true"] = float(np.mean([p.label == t for p, t in zip(found, y)]))

    # recovery of generated images with known latents
    if a.recover:
        starts = [g.seed_latent(1000 + s) for s in range(a.recover)]
        rec = g.project(torch.stack([s.image for s in starts]), steps=a.steps, seed=0)
        ps = np.array([r.psnr for r in rec])
        res["recovery"] = {"n": a.recover, "psnr_db_mean": float(ps.mean()), "psnr_db_min": float(ps.min()),
                           "share_at_least_30db": float((ps >= 30).mean())}

    # class edits: each projected digit towards another class; traits against a random direction
    strengths = [float(s) for s in a.strengths.split(",")]
    targets = np.array([(t + 1 + i % 9) % 10 for i, t in enumerate(y)])
    hits = np.zeros(len(strengths))
    if any(dd.kind == "class" for dd in g.directions()):
        gen = torch.Generator().manual_seed(7)
        before, moved, randomly = [], [], []
        for i, p in enumerate(found):
            strip = g.edit(p, f"class-{targets[i]}", strengths, a.layers)
            hits += clf.predict(flat16(strip)) == targets[i]
            cls = direction_named(g.directions(), f"class-{targets[i]}")
            v = torch.randn(cls.vector.shape, generator=gen)
            rnd = Direction("random", "random", cls.space, v / v.norm(), cls.unit, "as long as the class edit")
            before.append(p.image)
            moved.append(g.edit(p, cls, [a.chosen], a.layers)[0])
            randomly.append(g.edit(p, rnd, [a.chosen], a.layers)[0])
        t0, tc, tr = traits(torch.stack(before)), traits(torch.stack(moved)), traits(torch.stack(randomly))
        # a trait relative to its class (a 1 leans more than a 0 by shape): z-scores within the class, from the
        # real train digits; before and after the random move the source class, after a class edit the target
        ref = load_dataset("digits", DataRequest(resolution=g.spec.shape[-1], split="train"))
        rt, ry = traits(ref.x), ref.y.numpy()
        stats = [(np.array([t[ry == c].mean() for c in range(10)]), np.array([t[ry == c].std() for c in range(10)]))
                 for t in rt]

        def within(values, classes, k):
            mean, std = stats[k]
            return (values - mean[classes]) / std[classes]

        relative = {name: {"class_edit": float(np.abs(within(tc[k], targets, k) - within(t0[k], y, k)).mean()),
                           "random_direction": float(np.abs(within(tr[k], y, k) - within(t0[k], y, k)).mean())}
                    for k, name in enumerate(["stroke_width", "slant"])}
        res["edit"] = {
            "to_target_by_strength": dict(zip(map(str, strengths), (hits / n).tolist())),
            "chosen_strength": a.chosen, "layers": a.layers or "all",
            "random_direction_same_length_to_target": float(np.mean(clf.predict(flat16(torch.stack(randomly)))
                                                                    == targets)),
            "stroke_width_change_mean_abs": {"class_edit": float(np.abs(tc[0] - t0[0]).mean()),
                                              "random_direction": float(np.abs(tr[0] - t0[0]).mean())},
            "slant_change_mean_abs": {"class_edit": float(np.abs(tc[1] - t0[1]).mean()),
                                      "random_direction": float(np.abs(tr[1] - t0[1]).mean())},
            "trait_change_within_class_z_scores": relative,
            "real_digits_spread_of_traits": {"stroke_width_std": float(traits(x)[0].std()),
                                             "slant_std": float(traits(x)[1].std())}}
    elif g.num_classes:  # the class is an input: redraw each projected latent in the target class
        redrawn = torch.stack([g.render(p.latent[None], p.space, int(targets[i]))[0] for i, p in enumerate(found)])
        t0, tc = traits(images), traits(redrawn)
        res["edit"] = {"relabelled_to_target": float((clf.predict(flat16(redrawn)) == targets).mean()),
                       "stroke_width_change_mean_abs": float(np.abs(tc[0] - t0[0]).mean()),
                       "slant_change_mean_abs": float(np.abs(tc[1] - t0[1]).mean())}
    if a.figure and any(dd.kind == "class" for dd in g.directions()):
        from ganforge.runs.visuals import save_image_grid

        rows = [torch.cat([x[i : i + 1], p.image[None], g.edit(p, f"class-{targets[i]}", strengths)])
                for i, p in enumerate(found[:8])]
        save_image_grid(torch.cat(rows), a.figure, nrow=2 + len(strengths))
    print(json.dumps(res, indent=2))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
