"""Fault benchmark: kill -9 a training run at random moments, resume it each time, compare.

Usage: python benchmarks/kill_loop.py [--kills 25] [--steps 600] [--seed 0] [--workdir DIR]

1. An uninterrupted reference run keeps every checkpoint (``keep_checkpoints`` large).
2. The same command is started, SIGKILLed after a random delay (start-up, training steps,
   checkpoint writes, sample grids, the final report: every phase of a run gets hit), and
   restarted with ``--resume`` - again and again, until ``--kills`` kills have landed; then it
   runs to the end.
3. After every kill the run directory must load (``ganforge.load``) and its latest checkpoint
   must be bit-identical to the reference's checkpoint of the same step; at the end the final
   weights, optimizer states and the metrics log must equal the reference's.
Checkpoints, grids and logs are written often so that kills land inside writes.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import ganforge
from ganforge.runs import checkpoint as ck

ARGS = ["--resolution", "8", "--batch-size", "16", "--set", "net.width=8", "--set", "net.z_dim=8",
        "--checkpoint-every", "25", "--set", "sample_every=10", "--set", "log_every=5", "--set", "threads=1"]


def train_cmd(out: Path, steps: int, seed: int, resume: bool) -> list[str]:
    base = [sys.executable, "-m", "ganforge", "train"]
    if resume:
        return [*base, "--resume", str(out)]
    return [*base, "--out", str(out), "--steps", str(steps), "--seed", str(seed), *ARGS,
            "--set", f"keep_checkpoints={steps}"]


def same_checkpoint(a: Path, b: Path) -> bool:
    wa, wb = ck.load_weights(a), ck.load_weights(b)
    sa, sb = ck.load_state(a), ck.load_state(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa) and _equal(
        {k: v for k, v in sa.items() if k != "counters"}, {k: v for k, v in sb.items() if k != "counters"}) and \
        sa["counters"]["step"] == sb["counters"]["step"]


def _equal(x, y) -> bool:
    if torch.is_tensor(x):
        return torch.is_tensor(y) and x.shape == y.shape and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return isinstance(y, list) and len(x) == len(y) and all(_equal(a, b) for a, b in zip(x, y))
    return x == y


def log_steps_and_losses(run: Path) -> list[tuple[int, float, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["Loss/D"], r["Loss/G"]) for r in rows if "Loss/D" in r]


def kill_loop(workdir: Path, kills: int, steps: int, seed: int, max_delay: float = 6.0,
              verbose: bool = True) -> dict:
    rng = random.Random(seed)
    reference, run = workdir / "reference", workdir / "killed"
    t0 = time.perf_counter()
    subprocess.run(train_cmd(reference, steps, seed, False), check=True, capture_output=True)
    ref_seconds = time.perf_counter() - t0
    landed, mismatches, unloadable, attempts = 0, [], 0, 0
    while landed < kills:
        attempts += 1
        resume = (run / "config.yaml").is_file() and (run / "run.json").is_file()
        proc = subprocess.Popen(train_cmd(run, steps, seed, resume), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.2, max_delay)
        try:
            proc.wait(timeout=delay)  # finished before the kill: start over from a copy of nothing
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            landed += 1
        else:
            if proc.returncode == 0:  # the run completed: begin a new run to kill
                shutil.rmtree(run)
                continue
            raise RuntimeError(f"training exited with {proc.returncode} without being killed")
        if not (run / "checkpoints" / "latest.json").is_file() and not list(run.glob("checkpoints/step-*")):
            status = "no checkpoint yet"
        else:
            try:
                ganforge.load(run).sample(2, seed=0)
                latest = ck.latest_checkpoint(run)
                ok = same_checkpoint(latest, reference / "checkpoints" / latest.name)
                status = f"{latest.name}: {'identical' if ok else 'DIFFERENT'}"
                if not ok:
                    mismatches.append(latest.name)
            except Exception as e:  # noqa: BLE001 - any failure to load is what this script looks for
                unloadable += 1
                status = f"UNLOADABLE: {e}"
        if verbose:
            print(f"kill {landed:>2} after {delay:4.1f} s -> {status}", flush=True)
    resume = (run / "config.yaml").is_file() and (run / "run.json").is_file()
    proc = subprocess.run(train_cmd(run, steps, seed, resume), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the final resume failed: {proc.stderr.strip().splitlines()[-1:]}")
    final_ok = same_checkpoint(ck.latest_checkpoint(run), ck.latest_checkpoint(reference))
    log_ok = log_steps_and_losses(run) == log_steps_and_losses(reference)
    return {"kills": landed, "attempts": attempts, "steps": steps, "reference_seconds": round(ref_seconds, 1),
            "unloadable": unloadable, "mismatched_checkpoints": mismatches, "final_identical": final_ok,
            "log_identical": log_ok}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=25)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-delay", type=float, default=6.0, help="seconds; kills land uniformly in [0.2, this]")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ganforge-kill-"))
    result = kill_loop(workdir, args.kills, args.steps, args.seed, args.max_delay)
    print(json.dumps(result, indent=1))
    ok = result["unloadable"] == 0 and not result["mismatched_checkpoints"] and result["final_identical"] \
        and result["log_identical"]
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
