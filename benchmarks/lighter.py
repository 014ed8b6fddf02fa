"""Benchmark: lighter generators (issue 31): distilled students, a same-size model trained from scratch for the
same wall time, and int8 ONNX files, against their teacher.

Usage:
    python benchmarks/lighter.py --teacher RUN [--widths 0.25 0.5] [--seeds 21] [--steps N] [--json out.json]
    python benchmarks/lighter.py --teacher ESRGAN_RUN --widths 0.5 --threads 2 --no-scratch   # an upscaler

For each width and seed, as a user types it:
- student: ``ganforge distill RUN --width W --steps N --seed S`` (default N: the teacher's steps), timed;
- scratch: ``ganforge train --config RUN/config.yaml --set net.g_width=<the student's> --seed S``, stopped with
  SIGTERM (it checkpoints and exits) when the student's wall time has passed: the same G, the same minutes.
Every generator is measured on 1,000 samples (sample seed 5) against the 360 held-out digits it never trained on
(fd, precision, recall, coverage in ganforge's digits features) and by a judge the project does not ship (a
scikit-learn MLP, benchmarks/digit_judge.py): the confident share, the rarest digit's share, the share read as
asked. Cost: parameters and multiply-adds per image (counted by torch.utils.flop_counter), PyTorch CPU latency
at batch 1 and throughput at batch 256 (``--threads`` threads), and for the teacher and each student the same
for the float and the int8 ONNX file (onnxruntime), with the int8 file's samples measured like the others.
An upscaler teacher (ESRGAN) is measured by sr_measures: a 128 -> 512 px upscale's cost and seconds, and PSNR /
SSIM on the held-out photos beside bicubic.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from digit_judge import fit_judge, flat16, held_out_measures  # noqa: E402

import ganforge  # noqa: E402
from ganforge.data import DataRequest, load_dataset  # noqa: E402
from ganforge.metrics import evaluate_samples  # noqa: E402
from ganforge.metrics.cost import cost, seconds  # noqa: E402
from ganforge.recipes.base import example_inputs  # noqa: E402


def timed(cmd: list[str], stop_after: float | None = None) -> float:
    """Run ``cmd``; with ``stop_after`` send it SIGTERM then (a run checkpoints and exits). Wall seconds."""
    print("command:", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    if stop_after is None:
        proc.wait()
    else:
        try:
            proc.wait(timeout=stop_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed with exit code {proc.returncode}")
    return time.perf_counter() - t0


def torch_cost(run: Path, data) -> dict:
    g = ganforge.load(run)
    G = g.net.eval()
    one, batch = example_inputs(g.recipe, data, 1, torch.device("cpu")), example_inputs(g.recipe, data, 256,
                                                                                       torch.device("cpu"))
    c = cost(G, batch, 256)
    return {"params": c["params"], "macs": c["macs"], "torch_b1_ms": seconds(lambda: one(G), 200) * 1e3,
            "torch_b256_img_s": 256 / seconds(lambda: batch(G), 10)}


def exported_session(run: Path, out: Path, int8: bool, threads: int):
    """``ganforge export RUN [--int8] --out OUT``, opened in onnxruntime with ``threads`` threads."""
    import onnxruntime as ort

    subprocess.run(["ganforge", "export", str(run), "--out", str(out), *(["--int8"] if int8 else [])], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])


def onnx_measures(run: Path, out: Path, int8: bool, test, clf, threads: int, n: int = 1000, seed: int = 5) -> dict:
    """Export (float or int8), then onnxruntime latency at batch 1, throughput at 256, and the samples' measures."""
    sess = exported_session(run, out, int8, threads)
    g = ganforge.load(run)
    gen = torch.Generator().manual_seed(seed)
    z = g.recipe.latent(n, gen, torch.device("cpu")).numpy()
    labels = torch.randint(10, (n,), generator=gen).numpy()
    names = [i.name for i in sess.get_inputs()]

    def feed(lo: int, hi: int) -> dict:
        return {k: v[lo:hi] for k, v in (("z", z), ("labels", labels)) if k in names}

    def median_s(lo: int, hi: int, repeats: int) -> float:
        return seconds(lambda: sess.run(None, feed(lo, hi)), repeats)

    x = torch.from_numpy(np.concatenate([sess.run(None, feed(i, i + 250))[0] for i in range(0, n, 250)]))
    ev = evaluate_samples(x, test, ["fd", "prdc"], features="digits", seed=seed)
    p = clf.predict_proba(flat16(x))
    return {"onnx_b1_ms": median_s(0, 1, 200) * 1e3, "onnx_b256_img_s": 256 / median_s(0, 256, 10),
            **{k: float(ev[k]) for k in ("fd", "precision", "recall", "coverage")},
            "confident": float((p.max(1) >= 0.9).mean()), "mb": out.stat().st_size / 2**20}


def sr_measures(run: Path, threads: int, work: Path, onnx: bool) -> dict:
    """Upscalers: multiply-adds and seconds of a 128 -> 512 px x4 upscale, and Y-PSNR / SSIM on the held-out
    photos of sr:photos (benchmarks/superres.py's protocol) at --blend 1 and 0, and for the int8 file."""
    from superres import measure as sr_scores

    from ganforge.data.superres import degrade, held_out_images
    from ganforge.metrics.superres import image_scores

    g = ganforge.load(run)
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    G = g.network(1.0).eval()
    c = cost(G, lambda m: m(x), 1)
    row = {"params": c["params"], "macs": c["macs"], "torch_512_s": seconds(lambda: G(x), 5, 1)}
    scores = sr_scores(g, held_out_images("photos"), g.scale)
    for method in ("bicubic", "blend 1", "blend 0"):
        for k in ("psnr", "ssim"):
            row[f"{method} {k}"] = float(np.mean([r[method][k] for r in scores]))
    if not onnx:
        return row
    for kind in ("float", "int8"):
        sess = exported_session(run, work / f"{run.name}-{kind}.onnx", kind == "int8", threads)
        took = seconds(lambda s=sess: s.run(None, {"images": x.numpy()}), 5, 1)
        psnr = []
        for _, hr in held_out_images("photos"):
            hr = hr[:, : hr.shape[1] // g.scale * g.scale, : hr.shape[2] // g.scale * g.scale]
            lr = degrade(hr[None], g.scale)
            up = torch.from_numpy(sess.run(None, {"images": lr.numpy()})[0][0])
            psnr.append(image_scores(up, hr, g.scale)["psnr"])
        row.update({f"{kind}_512_s": took, f"{kind} blend 1 psnr": float(np.mean(psnr))})
    return row


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--seeds", type=int, nargs="+", default=[21])
    ap.add_argument("--steps", type=int, default=None, help="distillation steps (default: the teacher's)")
    ap.add_argument("--threads", type=int, default=1, help="threads for the latency and throughput figures")
    ap.add_argument("--no-scratch", action="store_true")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="passed to ganforge distill")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    teacher = ganforge.load(args.teacher)
    if teacher.kind != "upscaler":
        clf, acc, real = fit_judge()
        print(f"judge: held-out accuracy {acc:.3f}, real held-out digits confident {real:.3f}")
        data = load_dataset("digits", DataRequest(resolution=teacher.spec.shape[-1], split="train"))
        test = load_dataset("digits", DataRequest(resolution=teacher.spec.shape[-1], split="test"))
    work = Path(tempfile.mkdtemp(prefix="ganforge-lighter-"))
    rows: dict[str, dict] = {}

    def measure(name: str, run: Path, **extra) -> None:
        if teacher.kind == "upscaler":
            rows[name] = {**extra, **sr_measures(run, args.threads, work, not args.no_onnx and "scratch" not in name)}
            print(name, json.dumps({k: round(v, 4) for k, v in rows[name].items()}), flush=True)
            return
        row = {**extra, **torch_cost(run, data), **held_out_measures(run, clf, test=test)}
        if not args.no_onnx and "scratch" not in name:
            for kind in ("float", "int8"):
                o = onnx_measures(run, work / f"{name}-{kind}.onnx", kind == "int8", test, clf, args.threads)
                row.update({f"{kind}_{k}": v for k, v in o.items()})
        rows[name] = row
        print(name, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)

    measure("teacher", args.teacher)
    for seed in args.seeds:
        for w in args.widths:
            student = work / f"student-w{w}-s{seed}"
            cmd = ["ganforge", "distill", str(args.teacher), "--width", str(w), "--seed", str(seed), "--out",
                   str(student), *(["--steps", str(args.steps)] if args.steps else []),
                   *[a for s in args.sets for a in ("--set", s)]]
            wall = timed(cmd)
            measure(f"student-w{w}-s{seed}", student, wall_s=wall)
            if args.no_scratch:
                continue
            scratch = work / f"scratch-w{w}-s{seed}"  # the student's config without its teacher
            cmd = ["ganforge", "train", "--config", str(student / "config.yaml"), "--out", str(scratch),
                   "--seed", str(seed), "--steps", "1000000", "--set", "distill.teacher=null"]
            wall_s = timed(cmd, stop_after=wall)
            measure(f"scratch-w{w}-s{seed}", scratch, wall_s=wall_s)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
