"""Benchmark: video generation on moving digits (issue 29), beside the two baselines an image GAN gives.

Usage:
    python benchmarks/video.py --seeds 41 42 43 [--set video.generator=frames] [--json out.json]
    python benchmarks/video.py --runs RUN ... --baseline RUN      # measure runs already trained

For each seed, as a user types it:
- video: ``ganforge train --recipe video --seed S`` (moving-digits, one digit, 32 px, 16 frames), timed;
- baseline: ``ganforge train --recipe cgan --data folder:FRAMES --resolution 32 --seed S`` on 8,192 single
  frames of the training clips in one subfolder per digit, stopped with SIGTERM (it checkpoints and exits) when
  the video run's wall time has passed: a class-conditional image GAN with the same labels and minutes. Its
  clips are drawn two ways, each clip for one digit: every frame from its own latent (``flicker``) and one
  latent for the whole clip (``frozen``: no motion).
Every generator draws 500 clips (sample seed 5), measured against the 1,024 held-out test clips (digits the
runs never saw) by ganforge's video measures (metrics/video.py) and by a judge the project does not ship (a
scikit-learn MLP on the tracked digit crops, benchmarks/digit_judge.py): its confident share and the share
of clips whose digit it reads the same in every frame, and for class-conditional draws the share of clips it
reads as the digit asked for (by majority over frames). ``real`` is 500 training clips measured the same way.
Sampling time: 100 clips, best of 3, ``--threads`` threads.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, flat16  # noqa: E402
from lighter import timed  # noqa: E402

import ganforge  # noqa: E402
from ganforge.data import DataRequest, load_dataset  # noqa: E402
from ganforge.metrics.video import crops, video_metrics  # noqa: E402
from ganforge.runs.provenance import save_png  # noqa: E402

N_CLIPS, SAMPLE_SEED, FRAMES_FOR_BASELINE = 500, 5, 8192
SHOWN = ["frame_fd", "frame_precision", "frame_recall", "frame_coverage", "confident", "identity_kept",
         "mlp_confident", "mlp_identity_kept", "mlp_as_asked", "speed", "speed_cv", "bounce_ok", "reversals_per_clip",
         "still", "clip_fd", "digit_kl"]


def independent(clf, clips: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """The MLP judge on each frame's tracked digit crop: confident share of frames, clips read as one digit, and
    clips read (by majority over frames) as the digit asked for."""
    c = crops(clips)
    p = clf.predict_proba(flat16(c.flatten(0, 1))).reshape(c.shape[0], c.shape[1], -1)
    pred = p.argmax(-1)
    out = {"mlp_confident": float((p.max(-1) >= 0.9).mean()),
           "mlp_identity_kept": float((pred == pred[:, :1]).all(1).mean())}
    if labels is not None:
        majority = np.array([np.bincount(row, minlength=10).argmax() for row in pred])
        out["mlp_as_asked"] = float((majority == labels.numpy()).mean())
    return out


def frames_folder(root: Path) -> Path:
    """8,192 single frames of the training clips as PNGs, one subfolder per digit (the image baseline's data)."""
    train = load_dataset("moving-digits", DataRequest(32))
    g = torch.Generator().manual_seed(0)
    pick = torch.randint(len(train), (FRAMES_FOR_BASELINE,), generator=g), torch.randint(
        train.x.shape[1], (FRAMES_FOR_BASELINE,), generator=g)
    frames, digits = train.x[pick[0], pick[1]], train.y[pick[0]]
    for i, (f, d) in enumerate(zip(frames, digits)):
        (root / str(int(d))).mkdir(parents=True, exist_ok=True)
        save_png(f, root / str(int(d)) / f"{i:05d}.png", {})
    return root


def baseline_clips(run: Path, n: int, frames: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A conditional image GAN's clips, one digit each (uniform): ``flicker`` (a latent per frame) and ``frozen``
    (one latent per clip)."""
    g = ganforge.load(run)
    labels = torch.randint(10, (n,), generator=torch.Generator().manual_seed(seed))
    each = g.sample(n * frames, seed=seed, labels=labels.repeat_interleave(frames))
    one = g.sample(n, seed=seed, labels=labels)
    return {"flicker (image GAN, a latent per frame)": (each.view(n, frames, *each.shape[1:]), labels),
            "frozen (image GAN, one latent per clip)": (one[:, None].expand(-1, frames, -1, -1, -1).contiguous(),
                                                        labels)}


def sampling_seconds(run: Path, threads: int) -> float:
    torch.set_num_threads(threads)
    g = ganforge.load(run)
    g.sample(100, seed=0)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        g.sample(100, seed=1)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--seeds", type=int, nargs="*", default=[41])
    p.add_argument("--runs", nargs="*", default=[], help="video runs already trained (instead of training)")
    p.add_argument("--baseline", default=None, help="an image-GAN run on single frames already trained")
    p.add_argument("--set", dest="sets", action="append", default=[], help="key=value for the video runs")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="video-bench-"))
    test = load_dataset("moving-digits", DataRequest(32, split="test"))
    train = load_dataset("moving-digits", DataRequest(32))
    clf, acc, _ = fit_judge()
    print(f"independent judge: scikit-learn MLP, held-out digit accuracy {acc:.3f}")
    rows: dict[str, dict] = {}

    def measure(name: str, clips: torch.Tensor, labels: torch.Tensor | None = None, extra: dict | None = None) -> None:
        m = video_metrics(clips, test, n=N_CLIPS)
        m.update(independent(clf, clips[:N_CLIPS], None if labels is None else labels[:N_CLIPS].cpu()))
        rows[name] = {**m, **(extra or {})}
        print(name, json.dumps({k: round(v, 4) for k, v in rows[name].items() if isinstance(v, float)}), flush=True)

    measure("real (training clips)", train.x[:N_CLIPS])
    runs = [Path(r) for r in a.runs]
    walls: list[float] = []
    for seed in a.seeds if not runs else []:
        run = work / f"video-{seed}"
        cmd = ["ganforge", "train", "--recipe", "video", "--seed", str(seed), "--out", str(run)]
        cmd += ["--steps", str(a.steps)] if a.steps else []
        cmd += [x for s in a.sets for x in ("--set", s)]
        walls.append(timed(cmd))
        print(f"wall time: {walls[-1]:.1f} s")
        runs.append(run)
    for i, run in enumerate(runs):
        clips, labels = ganforge.load(run).draw(N_CLIPS, SAMPLE_SEED)
        extra = {"train_s": walls[i] if i < len(walls) else None, "sample_100_s": sampling_seconds(run, a.threads)}
        measure(f"video {run}", clips, labels, extra)
    baseline = Path(a.baseline) if a.baseline else None
    if baseline is None and walls:
        baseline = work / "frames-gan"
        folder = frames_folder(work / "frames")
        took = timed(["ganforge", "train", "--recipe", "cgan", "--data", f"folder:{folder}", "--resolution", "32",
                      "--seed", str(a.seeds[0]), "--steps", "1000000", "--set", "eval.final_n=0", "--out",
                      str(baseline)], stop_after=float(np.mean(walls)))
        print(f"baseline wall time: {took:.1f} s")
    if baseline is not None:
        for name, (clips, labels) in baseline_clips(baseline, N_CLIPS, test.x.shape[1], SAMPLE_SEED).items():
            measure(name, clips, labels)
    print("\n| generator | " + " | ".join(SHOWN) + " |\n|" + " --- |" * (len(SHOWN) + 1))
    for name, m in rows.items():
        print(f"| {name} | " + " | ".join("-" if m.get(k) is None else f"{m[k]:.3g}" for k in SHOWN) + " |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
