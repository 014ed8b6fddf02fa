"""Benchmark: what a plain folder of unlabelled images gets (`ganforge train --data folder:DIR`), issue 26.

Usage:
    python benchmarks/unlabelled.py                                   # the default on the digits folder, seeds 7,8
    python benchmarks/unlabelled.py --sets digits,faces100,shapes --candidates default,dcgan --seeds 7
    python benchmarks/unlabelled.py --from-json a.json                # print the table of saved rows

Each bundled set is written out once as ONE flat folder of PNGs (its train split, no labels, no
subfolders), and each candidate is trained on it with the CLI exactly as a user types it
(``ganforge train --data folder:DIR --seed S ARGS``, fresh process, wall time from start to exit).
Then 1,000 samples (sample seed 5) are measured against the set's HELD-OUT split, never trained on:
- digits (16 px, 1,437 train / 360 held-out): ganforge's digits feature space (fd, precision, recall,
  coverage) and the independent scikit-learn MLP judge (benchmarks/digit_judge.py): share of samples
  with confidence >= 0.9 and the smallest share of any predicted digit;
- faces100 (25 px, 80 / 20) and shapes scenes (shapes:2000, 32 px; held-out: the next 1,000 scenes of
  shapes:3000, same distribution; the shapes test split holds out colour-shape pairs): the
  random-CNN feature space (no judge knows these sets), and for shapes the scene parser
  (metrics/scenes.py): the share of samples read as a clean scene of one or two shapes;
- every set: the memorisation check (mem_copies, its false-alarm rate on held-out real images).
Issue 26's targets for the digits folder: <= 600 s, confident >= 0.85, every digit >= 6 %,
coverage >= 0.6, fd <= 4 against the held-out digits, no copies.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, judge, train_as_user  # noqa: E402

import ganforge  # noqa: E402
from ganforge.data import DataRequest, Dataset, load_dataset  # noqa: E402
from ganforge.metrics import evaluate_samples  # noqa: E402
from ganforge.metrics.scenes import parse  # noqa: E402

N_SAMPLES, SAMPLE_SEED = 1000, 5
FOLDERS = Path("/tmp/ganforge-unlabelled")
SETS = {  # name -> (dataset spec, resolution, feature space)
    "digits": ("digits", 16, "digits"),
    "faces100": ("faces100", 25, "random-cnn"),  # LFW's 25 x 25 px: the folder default then trains at 16 px
    "shapes": ("shapes:2000", 32, "random-cnn"),
}
CANDIDATES: dict[str, list[str]] = {
    "default": [],  # what the folder gets
    "dcgan": ["--recipe", "dcgan"],  # the folder default before issue 26
    "dcgan-reg": ["--recipe", "dcgan", "--set", "reg.mbstd=4", "--set", "reg.r1=0.2", "--set", "net.width=32",
                  "--set", "threads=1"],
    "stylegan2": ["--recipe", "stylegan2"],  # its folder preset
}
TARGETS = {"wall_s": ("<=", 600), "fd": ("<=", 4.0), "coverage": (">=", 0.6), "confident": (">=", 0.85),
           "min_share": (">=", 0.06), "mem_copies": ("<=", 0.0)}


def splits(name: str) -> tuple[Dataset, Dataset]:
    """(the images written to the folder, held-out images of the same distribution)."""
    spec, res, _ = SETS[name]
    if name == "shapes":  # its test split holds out colour-shape pairs: take 1,000 more scenes of the same kind
        more = load_dataset("shapes:3000", DataRequest(resolution=res, split="train")).x  # starts with shapes:2000's
        return Dataset("shapes", more[:2000]), Dataset("shapes-held-out", more[2000:])
    return tuple(load_dataset(spec, DataRequest(resolution=res, split=s)) for s in ("train", "test"))


def write_folder(name: str) -> Path:
    """The set's train split as one flat folder of PNGs (cached)."""
    res = SETS[name][1]
    out = FOLDERS / f"{name}-{res}px"
    if out.is_dir() and any(out.iterdir()):
        return out
    out.mkdir(parents=True, exist_ok=True)
    x = splits(name)[0].x
    for i, img in enumerate(x):
        a = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(out / f"{i:05d}.png")
    return out


def scene_share(images: torch.Tensor) -> float:
    """Share of samples the shapes parser reads as one or two things."""
    return float(np.mean([1 <= len(parse(img)) <= 2 for img in images]))


def samples(run: Path, name: str) -> torch.Tensor:
    """N_SAMPLES samples at the set's side (a run at another side is resized, bilinear)."""
    res = SETS[name][1]
    x = ganforge.load(run).sample(N_SAMPLES, seed=SAMPLE_SEED)
    if x.shape[-1] != res:
        x = torch.nn.functional.interpolate(x, size=(res, res), mode="bilinear", antialias=True).clamp(0, 1)
    return x


def measure(run: Path, name: str, clf) -> dict:
    x, feats = samples(run, name), SETS[name][2]
    train, test = splits(name)
    ev = evaluate_samples(x, test, ["fd", "prdc", "memorization"], features=feats, seed=SAMPLE_SEED,
                          train_set=train, held_out=test)
    row = {k: float(ev[k]) for k in ("fd", "precision", "recall", "coverage", "mem_copies", "mem_copies_heldout")}
    if name == "digits":
        j = judge(clf, x)
        row.update(confident=j["confident_frac"], min_share=float(j["class_share"].min()),
                   shares=[round(float(s), 3) for s in j["class_share"]])
    if name == "shapes":
        row.update(scene=scene_share(x[:300]), scene_real=scene_share(test.x[:300]))
    return row


def figures(run: Path, name: str, out: Path) -> None:
    """A grid of 64 samples and the 16 samples nearest a training image (each above that image)."""
    from torchvision.utils import save_image

    from ganforge.metrics.memorization import nearest_pairs

    x, train = samples(run, name), splits(name)[0]
    out.mkdir(parents=True, exist_ok=True)
    save_image(x[:64], out / f"{name}-samples.png", nrow=8, padding=1)
    save_image(nearest_pairs(x, train.x), out / f"{name}-nearest.png", nrow=16, padding=1)


def table(rows: list[dict]) -> str:
    cols = ["wall_s", "fd", "precision", "recall", "coverage", "mem_copies", "confident", "min_share", "scene"]
    lines = ["| set | candidate | seed | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 3)]
    for r in rows:
        vals = [("-" if c not in r else f"{r[c]:.0f}" if c == "wall_s" else f"{r[c]:.3f}") for c in cols]
        lines.append(f"| {r['set']} | {r['candidate']} | {r['seed']} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)  # --set is a `ganforge train` flag, not --sets
    ap.add_argument("--sets", default="digits")
    ap.add_argument("--candidates", default="default")
    ap.add_argument("--seeds", default="7,8", help="training seeds (0-6 were used to choose the default)")
    ap.add_argument("--json", type=Path, default=None, help="append the rows to this JSON file")
    ap.add_argument("--from-json", nargs="+", type=Path, default=None)
    ap.add_argument("--run", type=Path, default=None, help="measure this run (trained on --sets' folder) instead")
    ap.add_argument("--figures", type=Path, default=None, help="with --run: write its sample grid and nearest pairs")
    args, extra = ap.parse_known_args()
    if args.from_json:
        print(table([r for p in args.from_json for r in json.loads(p.read_text())]))
        return
    clf = fit_judge()[0]
    if args.run:
        print(json.dumps(measure(args.run, args.sets, clf)))
        if args.figures:
            figures(args.run, args.sets, args.figures)
        return
    rows: list[dict] = json.loads(args.json.read_text()) if args.json and args.json.is_file() else []
    for name in args.sets.split(","):
        folder = write_folder(name)
        for cand in args.candidates.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                t0 = time.perf_counter()
                run = train_as_user(["--data", f"folder:{folder}", *CANDIDATES[cand], "--seed", str(seed), *extra],
                                    f"ganforge-{name}-{cand}-")
                label = " ".join([cand, *extra]).replace("--set ", "")
                row = {"set": name, "candidate": label, "seed": seed, "wall_s": time.perf_counter() - t0,
                       "args": " ".join(CANDIDATES[cand] + extra), "run": str(run), **measure(run, name, clf)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
