"""Speed benchmark: the engine against a bare loop, where a step's time goes, options, threads.

Usage (one at a time, on a quiet machine):
    python benchmarks/throughput.py engine [--steps 600] [--recipes dcgan,cgan,projection,acgan]
    python benchmarks/throughput.py profile [--recipe cgan] [--steps 200] [--set key=value ...]
    python benchmarks/throughput.py options [--steps 600]          # channels_last, compile
    python benchmarks/throughput.py threads [--steps 600]          # threads, OMP_WAIT_POLICY, quiet and loaded
    python benchmarks/throughput.py stylegan2 [--steps 300] [--resolutions 16,32] [--set device=cuda ...]

``engine``: for every image recipe at its digits preset, images per second of ``ganforge.train``
(everything a run does: logging, health checks, sample grids, checkpoints, the final report)
against a bare loop over the same recipe's phases and EMA with nothing else, same config and
seed; a ratio under 0.95 is flagged.
``stylegan2``: images per second and seconds per thousand images (s/kimg, the official code's
unit) of ``ganforge train --recipe stylegan2`` at its preset, every phase included (G, D, lazy R1
every 16 steps and path length every 4, amortized), per resolution.
``profile``: a step split into data, forward (augmentation apart), backward, optimizer and EMA
with wall-clock timers (the CPU runs synchronously), plus torch.profiler's top operators.
``options`` and ``threads`` time ``ganforge train`` in fresh processes as a user runs it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

import ganforge
from ganforge.data import DataRequest, InfiniteSampler, load_dataset
from ganforge.recipes import StepContext, build_recipe, resolve
from ganforge.train.ema import EMA

IMAGE_RECIPES = ["dcgan", "cgan", "projection", "acgan"]
DEFAULT_THREADS = torch.get_num_threads()


def config(recipe: str, steps: int, sets: list[str] | None = None):
    return resolve(flags={"recipe": recipe, "steps": steps}, sets=["eval.final_n=0", *(sets or [])])


class BareLoop:
    """The recipe's phases and the EMA update, in a plain loop: what any GAN script must do per step."""

    def __init__(self, cfg) -> None:
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.data = load_dataset(cfg.data, DataRequest(cfg.resolution, cfg.channels, split="train"))
        self.recipe = build_recipe(cfg, self.data.spec())
        self.recipe.fit_data(self.data.to_model(self.data.x))
        self.opts = self.recipe.build_optimizers()
        self.phases = self.recipe.phases()
        G = self.recipe.nets[self.recipe.generator_name]
        self.ema = EMA(G, cfg.ema) if cfg.ema.enabled else None
        self.x, self.y = self.data.to_model(self.data.x), self.data.y
        if cfg.channels_last:  # the engine's memory format, so the comparison is of the loop alone
            for net in self.recipe.nets.values():
                net.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        torch.set_num_threads(cfg.threads or DEFAULT_THREADS)
        self.sampler = InfiniteSampler(len(self.x), cfg.batch_size, seed=cfg.seed * 1000)
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + 7)
        self.timers: dict[str, float] = defaultdict(float)

    def real(self):
        t0 = time.perf_counter()
        idx = self.sampler.next()
        out = self.x[idx], None if self.y is None else self.y[idx]
        self.timers["data"] += time.perf_counter() - t0
        return out

    def step(self, i: int) -> None:
        T, clock = self.timers, time.perf_counter
        ctx = StepContext(i, self.cfg.batch_size, self.real, self.gen)
        for phase in self.phases:
            if i % phase.every:
                continue
            for name, net in self.recipe.nets.items():
                net.requires_grad_(name in phase.needs_grad())
            opt = self.opts[phase.updates]
            for _ in range(phase.repeats):
                t0 = clock()
                opt.zero_grad(set_to_none=True)
                loss, _ = phase.run(ctx)
                t1 = clock()
                loss.backward()
                t2 = clock()
                opt.step()
                t3 = clock()
                T["forward"] += t1 - t0
                T["backward"] += t2 - t1
                T["optimizer"] += t3 - t2
        t0 = clock()
        if self.ema is not None:
            self.ema.update(self.recipe.nets[self.recipe.generator_name], (i + 1) * self.cfg.batch_size,
                            self.cfg.batch_size)
        T["ema"] += clock() - t0

    def run(self, steps: int) -> float:
        for net in self.recipe.nets.values():
            net.train()
        t0 = time.perf_counter()
        for i in range(steps):
            self.step(i)
        return steps * self.cfg.batch_size / (time.perf_counter() - t0)


def engine_speed(cfg) -> float:
    torch.set_num_threads(DEFAULT_THREADS)  # a preset's `threads` is process-wide: start each run from the default
    out = Path(tempfile.mkdtemp(prefix="ganforge-speed-")) / "run"
    cfg.out = str(out)
    ganforge.train(cfg, progress=False)
    from ganforge.train.logger import read_log

    seconds = [r["Timing/seconds"] for r in read_log(out) if "Timing/seconds" in r][-1]
    return cfg.steps * cfg.batch_size / seconds


def cmd_engine(args) -> None:
    """Best of ``--repeats`` interleaved runs of each, after one warm-up run of each (oneDNN caches)."""
    print("| recipe | steps | bare loop img/s | ganforge train img/s | engine / bare |")
    print("| --- | --- | --- | --- | --- |")
    for recipe in args.recipes.split(","):
        BareLoop(config(recipe, 50, args.set)).run(50)
        engine_speed(config(recipe, 50, args.set))
        bare = eng = 0.0
        for _ in range(args.repeats):
            bare = max(bare, BareLoop(config(recipe, args.steps, args.set)).run(args.steps))
            eng = max(eng, engine_speed(config(recipe, args.steps, args.set)))
        flag = "" if eng / bare >= 0.95 else " **below 0.95**"
        print(f"| {recipe} | {args.steps} | {bare:.0f} | {eng:.0f} | {eng / bare:.3f}{flag} |", flush=True)


def cmd_profile(args) -> None:
    from ganforge import augment

    loop = BareLoop(config(args.recipe, args.steps, args.set))
    original = augment.diff_augment

    def timed_augment(*a, **k):
        t0 = time.perf_counter()
        out = original(*a, **k)
        loop.timers["augmentation"] += time.perf_counter() - t0
        return out

    import ganforge.recipes.gan as gan_module

    gan_module.diff_augment = timed_augment
    loop.run(20)  # warm-up
    loop.timers.clear()
    t0 = time.perf_counter()
    loop.run(args.steps)
    total = time.perf_counter() - t0
    T = dict(loop.timers)
    T["forward"] -= T.get("augmentation", 0.0) + T.get("data", 0.0)  # data and augmentation run inside phases
    T["other"] = total - sum(T.values())
    print(f"{args.recipe} ({' '.join(args.set) or 'preset'}), {args.steps} steps of batch "
          f"{loop.cfg.batch_size}: {args.steps * loop.cfg.batch_size / total:.0f} img/s, "
          f"{1000 * total / args.steps:.2f} ms/step")
    print("| part | ms/step | share |")
    print("| --- | --- | --- |")
    for k in ("data", "forward", "augmentation", "backward", "optimizer", "ema", "other"):
        if k in T:
            print(f"| {k} | {1000 * T[k] / args.steps:.2f} | {100 * T[k] / total:.1f} % |")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loop.run(30)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def time_cli(extra: list[str], env: dict | None = None, steps: int = 600, batch: int = 64) -> float:
    """Images per second of the training loop of ``ganforge train`` in a fresh process."""
    out = Path(tempfile.mkdtemp(prefix="ganforge-speed-")) / "run"
    cmd = ["ganforge", "train", "--out", str(out), "--steps", str(steps), "--set", "eval.final_n=0", *extra]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **(env or {})})
    from ganforge.train.logger import read_log

    seconds = [r["Timing/seconds"] for r in read_log(out) if "Timing/seconds" in r][-1]
    return steps * batch / seconds


def cmd_stylegan2(args) -> None:
    """Best of ``--repeats`` fresh ``ganforge train --recipe stylegan2`` runs per resolution."""
    sets = [x for s in args.set for x in ("--set", s)]
    print("| resolution | steps | img/s | s/kimg |")
    print("| --- | --- | --- | --- |")
    for r in (int(v) for v in args.resolutions.split(",")):
        best = max(time_cli(["--recipe", "stylegan2", "--resolution", str(r), *sets], steps=args.steps)
                   for _ in range(args.repeats))
        print(f"| {r} | {args.steps} | {best:.0f} | {1000 / best:.1f} |", flush=True)


def cmd_options(args) -> None:
    print("| option | img/s (default digits run) | vs plain |")
    print("| --- | --- | --- |")
    base = time_cli([], steps=args.steps)
    print(f"| none | {base:.0f} | 1.00 |", flush=True)
    for name, extra in [("channels_last", ["--set", "channels_last=true"]),
                        ("compile", ["--set", "compile=true"]),
                        ("compile + channels_last", ["--set", "compile=true", "--set", "channels_last=true"])]:
        v = time_cli(extra, steps=args.steps)
        print(f"| {name} | {v:.0f} | {v / base:.2f} |", flush=True)


def cmd_threads(args) -> None:
    """Each thread setting alone (quiet) and beside a second identical run (loaded: two jobs on 2 cores).
    ``threads=0`` is the default policy (the cores idle at the start); ``--set`` picks the run (default: the
    digits default run; e.g. --set recipe=stylegan2 --set resolution=32)."""
    base = [x for s in args.set for x in ("--set", s)]
    settings = [("threads=0 (default: the idle cores)", ["--set", "threads=0"], {}),
                ("threads=1", ["--set", "threads=1"], {}),
                ("threads=2 (torch's default on 2 cores)", ["--set", "threads=2"], {})]
    print(f"run: ganforge train {' '.join(base)} --steps {args.steps}")
    print("| setting | quiet img/s | loaded img/s (each of 2 jobs) |")
    print("| --- | --- | --- |")
    for name, extra, env in settings:
        quiet = time_cli([*base, *extra], env, args.steps)
        with tempfile.TemporaryDirectory() as d:
            other = subprocess.Popen(["ganforge", "train", "--out", f"{d}/other", "--steps", str(args.steps * 10),
                                      "--set", "eval.final_n=0", *base, *extra], env={**os.environ, **env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(20)  # the other job is past its start-up and counted in the load average
            loaded = time_cli([*base, *extra], env, args.steps)
            other.kill()
            other.wait()
        print(f"| {name} | {quiet:.0f} | {loaded:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["engine", "profile", "options", "threads", "stylegan2"])
    ap.add_argument("--resolutions", default="16,32")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--recipes", default=",".join(IMAGE_RECIPES))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--recipe", default="cgan")
    ap.add_argument("--set", action="append", default=[], help="config override for engine/profile")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", file=sys.stderr)
    {"engine": cmd_engine, "profile": cmd_profile, "options": cmd_options, "threads": cmd_threads,
     "stylegan2": cmd_stylegan2}[args.what](args)


if __name__ == "__main__":
    main()
