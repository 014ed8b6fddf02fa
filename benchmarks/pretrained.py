"""Train the runs that ship inside the package (``pretrained:NAME``) and write them there, with their numbers.

Usage:
    python benchmarks/pretrained.py                      # every NAME below (about 8 minutes on 2 cores)
    python benchmarks/pretrained.py --names digits

Each run is trained with the CLI exactly as a user types it, measured (1,000 samples, sample seed 5)
against the 360 held-out test digits in ganforge's digits features and by the independent scikit-learn
judge (benchmarks/digit_judge.py), then copied without its optimizer state (weights, config, run.json,
model card) to ``src/ganforge/pretrained/NAME``. ``ganforge list pretrained`` prints the summary line.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, held_out_measures, train_as_user  # noqa: E402

from ganforge.config import to_yaml  # noqa: E402
from ganforge.io import write_json  # noqa: E402
from ganforge.runs import checkpoint as ck  # noqa: E402
from ganforge.runs.rundir import read_meta, read_run  # noqa: E402
from ganforge.train.model_card import write_model_card  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "src" / "ganforge" / "pretrained"
RUNS = {  # name -> (what it is, `ganforge train` arguments)
    "digits": ("the default run: class-conditional DCGAN on the bundled digits", ["--seed", "0"]),
    "stylegan2-digits": ("StyleGAN2 (conditional) on the bundled digits", ["--recipe", "stylegan2", "--seed", "0"]),
    # the folder default trained without labels: what an unlabelled folder can fine-tune from
    "digits-unlabelled": ("selfcond (the folder default) on the bundled digits with their labels ignored "
                          "(28 k-means clusters)", ["--recipe", "selfcond", "--set", "clusters.use_labels=false",
                                                    "--seed", "0"]),
}


def ship(run: Path, name: str, what: str, numbers: dict) -> Path:
    """Copy the run without optimizer state into the package."""
    out = ROOT / name
    shutil.rmtree(out, ignore_errors=True)
    ckpt = ck.latest_checkpoint(run)
    (out / "checkpoints" / ckpt.name).mkdir(parents=True)
    for f in ("weights.safetensors", "manifest.json"):
        shutil.copy2(ckpt / f, out / "checkpoints" / ckpt.name / f)
    write_json(out / "checkpoints" / "latest.json", {"step": int(ckpt.name[5:]), "path": ckpt.name})
    for f in ("config.yaml", "final_metrics.json"):
        if (run / f).is_file():
            shutil.copy2(run / f, out / f)
    summary = (f"{what}; against the 360 held-out digits: fd {numbers['fd']:.2f}, precision "
               f"{numbers['precision']:.2f}, recall {numbers['recall']:.2f}, coverage {numbers['coverage']:.2f}; "
               f"independent judge: {numbers['confident']:.0%} confidently a digit, rarest digit "
               f"{numbers['min_share']:.1%}")
    meta = {**read_meta(run), "summary": summary, "held_out_numbers": numbers,
            "trained_by": f"python benchmarks/pretrained.py --names {name}"}
    write_json(out / "run.json", meta)
    _, cfg, _ = read_run(out)
    cfg.out = None  # where it was trained: not a fact about the shipped run
    (out / "config.yaml").write_text(to_yaml(cfg))
    card = write_model_card(out, cfg, meta)
    card.write_text(card.read_text().replace(str(out), f"pretrained:{name}"))  # not this machine's path
    for f in out.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)  # checkpoints are private (0600); a shipped run is for everyone
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", default=",".join(RUNS))
    args = ap.parse_args()
    clf = fit_judge()[0]
    for name in args.names.split(","):
        what, train_args = RUNS[name]
        run = train_as_user(train_args, f"ganforge-pretrained-{name}-")
        numbers = {k: v for k, v in held_out_measures(run, clf).items() if v == v}  # NaN: not asked
        out = ship(run, name, what, numbers)
        print(json.dumps({"name": name, "args": train_args, **numbers}), flush=True)
        print(f"wrote {out} ({sum(p.stat().st_size for p in out.rglob('*') if p.is_file()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
