"""Benchmark: StyleGAN2 on 100 images - no augmentation vs DiffAugment vs ADA, same budget.

Usage:
    python benchmarks/few_shot.py                                   # digits100 and faces100, all three
    python benchmarks/few_shot.py --data faces100 --modes none,ada --steps 1500 --json few.json
    python benchmarks/few_shot.py --from-json few.json              # the table of saved rows
    python benchmarks/few_shot.py --family dcgan --data digits100 --steps 12000 --overfitting --set \
        checkpoint_every=1500                                       # the horizon where D overfits (issue 26)

Data:
- ``digits100``: the bundled digits, a stratified 100 of the 1,437 training images (10 per class);
  the other 1,337 are held out for the memorisation check; fd/kid/prdc against all 1,437 in the
  digits feature space (does G generalise from 100 to the distribution?).
- ``faces100``: scikit-image's LFW faces, the 80 of the training split; the 20 test faces are held
  out; fd/kid/prdc against the 80 in the random-CNN feature space.

Each run is ``ganforge train`` in a fresh process with the same steps, batch and nets, unconditional
(as in the DiffAugment paper's 100-shot runs). ``ganforge eval RUN --metrics fd,kid,prdc,memorization``
then measures 1,000 samples and writes the nearest-pairs picture RUN/memorization.png.
The published reference is relative: on 100-shot Obama DiffAugment took StyleGAN2's FID from 80.2
to 46.9 (-42 %, Zhao et al. 2020, Table 3).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import torch  # noqa: E402
from digit_judge import train_as_user  # noqa: E402

import ganforge  # noqa: E402

N_SAMPLES = 1000
DATA = {
    "digits100": ["--data", "digits", "--resolution", "16", "--set", f"data_fraction={100 / 1437:.6f}"],
    "faces100": ["--data", "faces100", "--resolution", "32"],
}
MODES = {
    "none": ["--set", "augment="],
    "diffaugment": ["--set", "augment=color,translation,cutout"],
    "ada": ["--set", "augment=ada"],
}
FAMILIES = {  # --family: the networks of the study
    "stylegan2": ["--recipe", "stylegan2", "--set", "style.conditional=false", "--set", "eval.final_n=0"],
    # the unconditional DCGAN family (minibatch stddev, EMA): fast enough at 16 px to reach the horizon where
    # D overfits 100 images (tens of thousands of passes over them)
    "dcgan": ["--recipe", "dcgan", "--set", "net.width=32", "--set", "reg.mbstd=4", "--set", "threads=1",
              "--set", "net.z_discrete=0", "--set", "reg.info=0",
              "--set", "eval.final_n=0", "--set", "keep_checkpoints=50"],
}
COLUMNS = ["fd", "kid_mean", "precision", "recall", "coverage", "mem_ratio", "mem_copies", "ada_p"]


def measure(run: Path, seed: int) -> dict:
    r = ganforge.evaluate(run, metrics="fd,kid,prdc,memorization", n=N_SAMPLES, seed=seed)
    from ganforge.train.logger import read_log

    p = [x["Augment/p"] for x in read_log(run) if "Augment/p" in x]
    return {k: r[k] for k in COLUMNS if k in r} | {"ada_p": p[-1] if p else 0.0}


@torch.no_grad()
def overfitting(run: Path) -> list[dict]:
    """At every kept checkpoint: E[sign(D(x))] (ADA's r_t) on the training images and on held-out real images
    of the same data, and D's accuracy gap (share scored real, train minus held-out). D overfits when r_t on
    the training images rises while the held-out images fall behind."""
    from ganforge.data.run_data import RunData
    from ganforge.recipes import build_recipe
    from ganforge.runs import checkpoint as ck
    from ganforge.runs.rundir import read_run

    _, cfg, spec = read_run(run)
    data = RunData.of(cfg)
    train, held = data.train, data.held_out()
    recipe = build_recipe(cfg, spec)
    D = recipe.nets["D"].eval()
    out = []
    for path in sorted((run / "checkpoints").glob("step-*")):
        ck.load_into(D, ck.split_weights(ck.load_weights(path))["D"], "D")
        logits = [torch.cat([D(train.to_model(x[i : i + 64])).flatten() for i in range(0, len(x) - 63, 64)])
                  for x in (train.x.repeat(2, 1, 1, 1), held.x)]
        out.append({"step": int(path.name[5:]), "rt_train": float(logits[0].sign().mean()),
                    "rt_held_out": float(logits[1].sign().mean()),
                    "acc_gap": float((logits[0] > 0).float().mean() - (logits[1] > 0).float().mean())})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| data | augment | steps | wall s | " + " | ".join(COLUMNS) + " | fd vs none |",
             "|" + " --- |" * (len(COLUMNS) + 5)]
    base = {(r["data"], r["seed"]): r["fd"] for r in rows if r["mode"] == "none"}
    for r in rows:
        ref = base.get((r["data"], r["seed"]))
        rel = f"{(r['fd'] - ref) / ref * 100:+.0f} %" if ref else ""
        vals = " | ".join(f"{r[c]:.3f}" for c in COLUMNS)
        lines.append(f"| {r['data']} | {r['mode']} | {r['steps']} | {r['wall_s']:.0f} | {vals} | {rel} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--data", default="digits100,faces100")
    ap.add_argument("--modes", default="none,diffaugment,ada")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="copy each run's samples and memorization.png here")
    ap.add_argument("--from-json", nargs="+", type=Path, default=None)
    ap.add_argument("--family", default="stylegan2", choices=sorted(FAMILIES))
    ap.add_argument("--overfitting", action="store_true", help="also D's r_t on train vs held-out per checkpoint")
    args, extra = ap.parse_known_args()
    if args.from_json:
        print(table([r for p in args.from_json for r in json.loads(p.read_text())]))
        return
    rows: list[dict] = json.loads(args.json.read_text()) if args.json and args.json.is_file() else []
    for data in args.data.split(","):
        for mode in args.modes.split(","):
            cmd = [*FAMILIES[args.family], *DATA[data], *MODES[mode], "--steps", str(args.steps), "--seed",
                   str(args.seed), *extra]
            t0 = time.perf_counter()
            run = train_as_user(cmd, f"ganforge-fewshot-{data}-{mode}-")
            wall = time.perf_counter() - t0
            row = {"data": data, "mode": mode, "seed": args.seed, "steps": args.steps, "wall_s": wall,
                   "args": " ".join(cmd), **measure(run, args.seed)}
            if args.overfitting:
                row["overfitting"] = overfitting(run)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.keep:
                dest = args.keep / f"{data}-{mode}"
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy(run / "samples" / "final.png", dest / "final.png")
                shutil.copy(run / "memorization.png", dest / "memorization.png")
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
