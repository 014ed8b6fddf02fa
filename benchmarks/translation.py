"""Benchmark: image-to-image translation at the presets - pix2pix on edges2photos, gray2color and labels2scenes,
CycleGAN (or CUT / FastCUT with --recipe) on digits2typeset - each trained as a user would (``ganforge train`` in
a fresh process), then measured.

Usage:
    python benchmarks/translation.py                                  # all four presets
    python benchmarks/translation.py --tasks gray2color --extra "--set translate.keep_luminance=true" --name lum
    python benchmarks/translation.py --tasks digits2typeset --recipe cut --extra "--seed 41" --name cut-41
    python benchmarks/translation.py --from-json translation.json     # the table of saved rows

pix2pix rows: PSNR / SSIM / L1 on the held-out pairs (edges2photos, gray2color: the photos chelsea and rocket,
never trained on; labels2scenes: 500 scenes of another seed) beside every trivial baseline: the input itself,
the training targets' mean image, and a per-pixel lookup of the mean target colour for each input value.

Unpaired digits rows: on 500 typeset digits freshly rendered from a seed neither training nor ganforge's own
evaluation uses, and on the 360 held-out handwritten digits: the share whose digit survives the
translation, by ganforge's judges (digits / typeset classifiers) and by independent scikit-learn MLPs
trained here (handwritten: the digits train split; typeset: renders of yet another seed); "identity"
is the same judge on the untranslated image (what no translation at all would score).
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, flat16, train_as_user  # noqa: E402

import ganforge  # noqa: E402
from ganforge.data import DataRequest, load_dataset  # noqa: E402
from ganforge.data.translation import typeset_digits  # noqa: E402
from ganforge.runs.visuals import save_image_grid  # noqa: E402

TASKS = {"edges2photos": "pix2pix", "gray2color": "pix2pix", "labels2scenes": "pix2pix", "digits2typeset": "cyclegan"}
FRESH_SEED = 11  # typeset renders: training uses 0, the eval split 1, the typeset classifier 2 and 3
JUDGE_SEED = 12  # renders the independent typeset judge is trained on
FIGURES = Path(__file__).parent / "figures" / "translation"


def typeset_judge():
    from sklearn.neural_network import MLPClassifier

    x, y = typeset_digits("train", 16, per_class=200, seed=JUDGE_SEED)
    return MLPClassifier((256,), alpha=1e-3, max_iter=400, random_state=0).fit(flat16(x), y.numpy())


def cycle_rows(run: Path, name: str) -> dict:
    from ganforge.metrics.translation import labels_kept

    t = ganforge.load(run)
    fresh, fresh_y = typeset_digits("test", 16, per_class=50, seed=FRESH_SEED)
    hand = load_dataset("digits", DataRequest(resolution=16, split="test"))
    to_hand, to_type = t.translate(fresh, "BtoA"), t.translate(hand.x, "AtoB")
    mlp_hand, acc_hand, _ = fit_judge()
    mlp_type = typeset_judge()

    def mlp(clf, x, y):
        return float((torch.from_numpy(clf.predict(flat16(x))) == y).float().mean())

    k = 10
    pick = torch.cat([torch.nonzero(fresh_y == c).flatten()[:1] for c in range(10)])
    save_image_grid(torch.cat([fresh[pick], to_hand[pick], hand.x[:k], to_type[:k]]), FIGURES / f"{name}-fresh.png",
                    nrow=k)
    return {
        "BtoA kept (ganforge judge)": labels_kept(to_hand, fresh_y, "digits_classifier"),
        "BtoA kept (independent MLP)": mlp(mlp_hand, to_hand, fresh_y),
        "BtoA identity (MLP)": mlp(mlp_hand, fresh, fresh_y),
        "AtoB kept (ganforge judge)": labels_kept(to_type, hand.y, "typeset_classifier"),
        "AtoB kept (independent MLP)": mlp(mlp_type, to_type, hand.y),
        "AtoB identity (MLP)": mlp(mlp_type, hand.x, hand.y),
        "MLP judge accuracy (handwritten test)": acc_hand,
    }


def paired_rows(run: Path, name: str, result: dict) -> dict:
    """Held-out pairs: input | output | target | the strongest trivial baseline, one row each; every trivial
    baseline's scores (the input copied, the training targets' mean image, the per-pixel lookup)."""
    from ganforge.data.images import set_channels
    from ganforge.metrics.translation import baseline

    t = ganforge.load(run)
    cfg = t.recipe.cfg
    test = load_dataset(cfg.data, DataRequest(cfg.resolution, split="test"))
    train = load_dataset(cfg.data, DataRequest(cfg.resolution, split="train"))
    idx = torch.linspace(0, len(test) - 1, 8).long()
    out = t.translate(test.x[idx], fit="resize")
    base = baseline(result["protocol"]["baseline"], test.x[idx], train)
    cells = torch.stack([set_channels(test.x[idx], 3), out, test.x_b[idx], base], 1).flatten(0, 1)
    save_image_grid(cells, FIGURES / f"{name}-held-out.png", nrow=4)
    return {f"{k} ({kind})": v for kind, scores in result["baselines"].items() for k, v in scores.items()}


def run_task(task: str, extra: list[str], name: str, run: Path | None = None, recipe: str | None = None) -> dict:
    """Train (or, with ``run``, take a run trained before with ``ganforge train``) and measure."""
    recipe = recipe or TASKS[task]
    if run is None:
        t0 = time.perf_counter()
        run = train_as_user(["--recipe", recipe, "--data", task, *extra], f"translation-{name}-")
        wall = time.perf_counter() - t0  # as the user waits: start-up and the final measurement included
    else:  # a given run: its own training clock
        from ganforge.runs.checkpoint import latest_checkpoint, load_state

        wall = load_state(latest_checkpoint(run))["counters"]["seconds"]
    r = ganforge.evaluate(run)
    row = {"name": name, "task": task, "recipe": recipe, "extra": " ".join(extra), "wall_s": round(wall, 1),
           "steps": ganforge.load(run).recipe.cfg.steps}
    row |= {k: v for k, v in r.items() if isinstance(v, float)}
    FIGURES.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "samples" / "final.png", FIGURES / f"{name}-training.png")
    if "baselines" in r:
        row |= paired_rows(run, name, r)
    else:
        row |= cycle_rows(run, name)
    row["run"] = str(run)
    return row


def table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        lines.append(f"### {r['name']} ({r['recipe']} on {r['task']}{', ' + r['extra'] if r['extra'] else ''}): "
                     f"{r['steps']} steps, {r['wall_s']:.0f} s wall")
        lines += ["", "| measure | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4f} |" for k, v in r.items() if isinstance(v, float) and k != "wall_s"]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--extra", default="", help="more ganforge train arguments, e.g. \"--steps 500\"")
    p.add_argument("--name", default="", help="suffix of the row names and figures")
    p.add_argument("--json", type=Path, default=None, help="append the rows to this file")
    p.add_argument("--from-json", type=Path, default=None)
    p.add_argument("--run", type=Path, default=None, help="measure this run (of the one task) instead of training")
    p.add_argument("--recipe", default=None, help="train this recipe, not the task's (cut, fastcut on digits2typeset)")
    a = p.parse_args()
    if a.from_json:
        print(table(json.loads(a.from_json.read_text())))
        return
    rows = []
    for task in a.tasks.split(","):
        rows.append(run_task(task, shlex.split(a.extra), task + (f"-{a.name}" if a.name else ""), a.run, a.recipe))
        print(table(rows[-1:]), flush=True)
    if a.json:
        old = json.loads(a.json.read_text()) if a.json.is_file() else []
        a.json.write_text(json.dumps(old + rows, indent=1))


if __name__ == "__main__":
    main()
