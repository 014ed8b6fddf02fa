"""The GPU paths in one short run (issue 25, item 5): run it whenever a CUDA machine is lent.

    python benchmarks/gpu_check.py [--steps 300] [--out gpu_check.json]

Checks, each printed as one row of a table (about 3-5 minutes on one H100):

1. CPU and CUDA agree: the same generator and discriminator, the same inputs, one loss and its gradients on
   both devices (float32, TF32 off), max relative difference of outputs and gradients;
2. the default run (cgan digits) on CUDA: float32, bf16 autocast, fp16 autocast with the GradScaler (forced
   by reporting the GPU as without bf16): img/s, final losses finite, fd of 1,000 samples;
3. StyleGAN2 digits the same three ways;
4. with two or more GPUs: a two-process NCCL DDP run through torchrun;
5. img/s of every image recipe at its preset (float32), ``--steps`` steps, start-up excluded.

Nothing here runs without CUDA: on a CPU machine it says so and exits 2 (``--device cpu --steps 2`` runs every
check on the CPU instead, to test the script itself; its numbers mean nothing).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import ganforge
from ganforge.train.logger import read_log

QUIET = {"eval.final_n": 0, "sample_every": 100_000, "checkpoint_every": 100_000, "log_every": 50}
RECIPES = ["dcgan", "cgan", "stylegan2", "vae", "ddpm", "pix2pix", "cyclegan", "esrgan", "text2image"]
STAGES = {"esrgan": "sr.pretrain", "text2image": "text.pretrain"}  # a first stage, shortened to half the steps


def timed_run(cfg: dict, out: Path) -> tuple[Path, float]:
    t0 = time.perf_counter()
    run = ganforge.train(dict(QUIET, **cfg, out=str(out)), progress=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return run, time.perf_counter() - t0


def last_losses(run: Path) -> dict[str, float]:
    rows = [r for r in read_log(run) if any(k.startswith("Loss/") for k in r)]
    return {k: v for k, v in rows[-1].items() if k.startswith("Loss/")} if rows else {}


def fd_of(run: Path) -> float:
    return float(ganforge.evaluate(run, metrics="fd", n=1000)["fd"])


def equivalence(device: str) -> dict:
    """One loss and its gradients on CPU and CUDA from the same weights and inputs (float32, TF32 off)."""
    from ganforge.data import DataRequest, load_dataset
    from ganforge.recipes import build_recipe, resolve

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = {}
    for recipe in ("cgan", "stylegan2"):
        cfg = resolve(file_values={"recipe": recipe, "data": "digits"})
        data = load_dataset("digits", DataRequest(resolution=cfg.resolution, split="train"))
        r = build_recipe(cfg, data.spec())
        G, D = r.nets["G"], r.nets["D"]
        gen = torch.Generator().manual_seed(0)
        z = r.latent(32, gen, torch.device("cpu"))
        y = torch.randint(10, (32,), generator=gen)
        real = data.to_model(data.x[:32])
        results = {}
        for name, dev in (("cpu", "cpu"), ("cuda", device)):
            G.to(dev), D.to(dev)
            G.zero_grad(), D.zero_grad()
            lab = y.to(dev) if r.conditional else None
            fake = r.generate(G, z.to(dev), labels=lab)
            loss = torch.nn.functional.softplus(-D(fake, lab) if r.conditional else -D(fake)).mean() + \
                torch.nn.functional.softplus(D(real.to(dev), lab) if r.conditional else D(real.to(dev))).mean()
            loss.backward()
            grads = torch.cat([p.grad.flatten().cpu() for p in list(G.parameters()) + list(D.parameters())
                               if p.grad is not None])
            results[name] = (fake.detach().cpu(), grads, float(loss))
        (fc, gc, lc), (fg, gg, lg) = results["cpu"], results["cuda"]
        out[recipe] = {"output_max_abs_diff": float((fc - fg).abs().max()),
                       "grad_rel_diff": float((gc - gg).norm() / gc.norm().clamp(min=1e-12)),
                       "loss_cpu": lc, "loss_cuda": lg}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cuda", help="cuda; cpu only tests this script")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing to check (run it where a GPU is lent)")
        sys.exit(2)
    rows, tmp = [], Path(tempfile.mkdtemp(prefix="gpu_check-"))
    gpus = torch.cuda.device_count()
    name = torch.cuda.get_device_name(0) if a.device == "cuda" else "CPU (a test of this script)"
    rows.append({"check": "device", "result": f"{name}, {gpus} GPU(s), torch {torch.__version__}, CUDA "
                 f"{torch.version.cuda}"})
    eq = equivalence(a.device)
    for recipe, e in eq.items():
        ok = e["output_max_abs_diff"] < 1e-3 and e["grad_rel_diff"] < 1e-3
        rows.append({"check": f"CPU = CUDA, {recipe} loss and gradients", "ok": ok, **e})
    for recipe in ("cgan", "stylegan2"):
        for mode in ("fp32", "bf16", "fp16"):
            if a.device == "cpu" and mode == "fp16":
                continue  # CPU autocast is bf16 only
            cfg = {"recipe": recipe, "data": "digits", "steps": a.steps, "device": a.device, "amp": mode != "fp32"}
            original = torch.cuda.is_bf16_supported
            if mode == "fp16":
                torch.cuda.is_bf16_supported = lambda *_, **__: False  # the GradScaler path of GPUs without bf16
            try:
                run, seconds = timed_run(cfg, tmp / f"{recipe}-{mode}")
            finally:
                torch.cuda.is_bf16_supported = original
            losses = last_losses(run)
            batch = ganforge.load(run).recipe.cfg.batch_size
            finite = all(math.isfinite(v) for v in losses.values())
            rows.append({"check": f"{recipe} digits, {mode}", "ok": finite, "img_per_s": a.steps * batch / seconds,
                         "fd_1000": fd_of(run), "losses": losses})
    if gpus >= 2 and a.device == "cuda":
        cmd = ["torchrun", "--nproc-per-node", "2", "-m", "ganforge", "train", "--device", "cuda", "--steps", "100",
               "--out", str(tmp / "ddp"), "--set", "eval.final_n=0"]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        rows.append({"check": "2-process NCCL DDP (cgan, 100 steps)", "ok": done.returncode == 0,
                     "seconds": time.perf_counter() - t0, "tail": done.stderr[-300:]})
    else:
        rows.append({"check": "2-process NCCL DDP", "result": "skipped: one GPU"})
    for recipe in RECIPES:
        cfg = {"recipe": recipe, "steps": a.steps, "device": a.device}
        if recipe in STAGES:
            cfg[STAGES[recipe]] = a.steps // 2
        try:
            run, seconds = timed_run(cfg, tmp / f"speed-{recipe}")
            batch = ganforge.load(run).recipe.cfg.batch_size
            rows.append({"check": f"{recipe} at its preset, fp32", "ok": True,
                         "img_per_s": a.steps * batch / seconds})
        except Exception as e:  # noqa: BLE001 - one recipe's failure is a row of the table, not the end of it
            rows.append({"check": f"{recipe} at its preset, fp32", "ok": False, "error": f"{type(e).__name__}: {e}"})
    print("| check | ok | numbers |\n| --- | --- | --- |")
    for r in rows:
        numbers = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
                            if k not in ("check", "ok"))
        print(f"| {r['check']} | {r.get('ok', '')} | {numbers} |")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
