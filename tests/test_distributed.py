"""Two CPU processes (gloo) train one run: weights stay identical, rank 0 alone writes."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str, result_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from ganforge.recipes import resolve
    from ganforge.train.trainer import Trainer

    cfg = resolve({"resolution": 8, "batch_size": 8, "net.width": 8, "net.z_dim": 8, "steps": 4, "log_every": 2,
                   "checkpoint_every": 2, "out": out, "device": "cpu"})
    trainer = Trainer(cfg, progress=False)
    assert trainer.batch == 4  # the global batch is split across the two processes
    G = trainer.recipe.nets["G"]
    trainer.fit()  # shuts the process group down at the end
    flat = torch.cat([p.detach().flatten() for p in G.parameters()])
    torch.save(flat, os.path.join(result_dir, f"rank{rank}.pt"))


def test_two_process_training_keeps_ranks_in_sync(tmp_path):
    port = _free_port()
    out = tmp_path / "run"
    mp.spawn(_worker, args=(2, port, str(out), str(tmp_path)), nprocs=2, join=True)
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert torch.equal(w0, w1)
    assert (out / "checkpoints" / "latest.json").is_file() and (out / "samples" / "final.png").is_file()
    assert not dist.is_initialized()


def _equivalence_worker(rank: int, world: int, port: int, cfg: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import ganforge

    ganforge.train(cfg, progress=False)


def _losses(run):
    import json

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if any(k.startswith("Loss/") for k in r)]
    keys = ["Loss/D", "Loss/G"] if "Loss/D" in rows[0] else sorted(k for k in rows[0] if k.startswith("Loss/"))
    return torch.tensor([[r[k] for k in keys] for r in rows])


# recipe config, max |loss difference| over the 30-step curve. Measured: 2e-7 without batch norm
# (equal up to float rounding), 0.008 for DCGAN, whose batch norm sees B/2 per rank instead of B.
EQUIVALENCE = {
    "vanilla": ({"recipe": "vanilla", "data": "ring8", "steps": 30}, 1e-4),
    "dcgan": ({"recipe": "dcgan", "resolution": 16, "net.width": 8, "net.z_dim": 8, "steps": 30,
               "augment": "translation,cutout"}, 0.05),
    # ADA's r_t is all-reduced, so p moves alike; minibatch stddev and path length (whose batch is a
    # per-rank share) are off, as they are the only parts that see a rank's batch apart
    "stylegan2": ({"recipe": "stylegan2", "resolution": 8, "net.width": 4, "net.max_channels": 8, "net.z_dim": 8,
                   "style.w_dim": 8, "style.map_layers": 2, "reg.mbstd": 0, "style.pl_weight": 0, "steps": 30,
                   "reg.lazy_every": 4, "augment": "ada", "ada.interval": 2, "ada.kimg": 0.1, "ada.p": 0.3}, 1e-4),
    # translation: crops and flips are drawn for the global batch; domain B comes from the paired indices
    # (pix2pix) or a sampler of its own (CycleGAN). Off: dropout (torch's per-process RNG) and the image
    # pool, whose history is per rank.
    "pix2pix": ({"recipe": "pix2pix", "data": "edges2photos", "resolution": 16, "net.width": 4,
                 "net.max_channels": 8, "translate.norm": "instance", "translate.dropout": 0, "steps": 30,
                 "eval.final_n": 0}, 1e-4),
    # CycleGAN's curves are compared over 6 steps (measured: 2e-6 apart): after that this tiny pair of
    # generators amplifies rounding, so that even one process with threads=1 and threads=2 drifts apart
    # (2e-4 by step 8, 0.04 by step 30); a semantic difference (wrong batch or slice) shows from step 1
    "cyclegan": ({"recipe": "cyclegan", "data": "digits2typeset", "resolution": 16, "net.width": 4,
                  "net.max_channels": 8, "translate.blocks": 1, "translate.pool": 0, "steps": 6,
                  "eval.final_n": 0}, 1e-3),
    # diffusion: timesteps and noise drawn for the global batch, GroupNorm (per sample): equal up to rounding
    "ddpm": ({"recipe": "ddpm", "resolution": 8, "diffusion.channels": "8,16", "diffusion.attention": "0,1",
              "diffusion.sample_steps": 2, "steps": 10, "eval.final_n": 0}, 1e-4),
}


@pytest.mark.parametrize("name", list(EQUIVALENCE))
def test_two_processes_with_global_batch_b_follow_one_process_with_batch_b(tmp_path, name):
    """Data, latents and augmentations are drawn for the global batch and split, gradients and logged
    statistics are averaged: the loss curves agree (exactly up to rounding without batch norm)."""
    import ganforge

    extra, tol = EQUIVALENCE[name]
    cfg = {"batch_size": 16, "log_every": 1, "checkpoint_every": 1000, "sample_every": 1000, **extra}
    one = ganforge.train(dict(cfg, out=str(tmp_path / "one")), progress=False)
    mp.spawn(_equivalence_worker, args=(2, _free_port(), dict(cfg, out=str(tmp_path / "two"))), nprocs=2, join=True)
    a, b = _losses(one), _losses(tmp_path / "two")
    assert a.shape == b.shape and len(a) == cfg["steps"]
    assert (a - b).abs().max() <= tol, (a - b).abs().max()


def _torchrun(out, port, steps, *extra):
    """The README's multi-node command, on this machine: one node, two CPU processes, c10d rendezvous."""
    import sys

    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", *extra,
            "-m", "ganforge", "train", "--out", str(out), "--device", "cpu", "--resolution", "8", "--batch-size", "16",
            "--steps", str(steps), "--set", "net.width=8", "--set", "net.z_dim=8", "--set", "threads=1",
            "--set", "log_every=10", "--checkpoint-every", "20", "--set", "eval.final_n=0"]


def _workers(agent_pid):
    """The torchrun agent's child processes (read from /proc: no procps needed)."""
    from pathlib import Path

    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == agent_pid:  # field 4 of /proc/PID/stat: the parent pid
            children.append(int(stat.parent.name))
    return sorted(children)


def test_torchrun_elastic_restart_resumes_from_the_last_checkpoint(tmp_path):
    import json
    import signal
    import subprocess
    import time

    out = tmp_path / "run"
    agent = subprocess.Popen(_torchrun(out, _free_port(), 400, "--max-restarts", "1"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list(out.glob("checkpoints/step-0000020")) and time.time() < deadline:
        time.sleep(0.1)
    workers = _workers(agent.pid)
    assert len(workers) == 2
    import os

    os.kill(workers[0], signal.SIGKILL)  # a worker dies (a lost node, an OOM kill)
    log, _ = agent.communicate(timeout=240)
    assert agent.returncode == 0, log[-2000:]
    assert "resumed" in log  # the restarted workers continued from a checkpoint instead of step 0
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == 400


def test_sigterm_under_torchrun_stops_every_rank_with_a_checkpoint(tmp_path):
    import json
    import signal
    import subprocess
    import time

    out = tmp_path / "run"
    agent = subprocess.Popen(_torchrun(out, _free_port(), 100_000), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").is_file() and time.time() < deadline:
        time.sleep(0.1)
    for pid in _workers(agent.pid):  # what a cluster's pre-emption sends to every process of the job
        import os

        os.kill(pid, signal.SIGTERM)
    log, _ = agent.communicate(timeout=60)
    assert agent.returncode == 0, log[-2000:]
    step = json.loads((out / "checkpoints" / "latest.json").read_text())["step"]
    assert 0 < step < 100_000 and f"stopped by SIGTERM at step {step}" in log


def test_evaluation_during_ddp_training_splits_feature_extraction_and_matches_one_process(tmp_path):
    """Each rank extracts the features of its half of the samples; rank 0's metrics equal those of
    the same samples measured in one process."""
    import ganforge
    from ganforge.metrics import evaluate as ev

    cfg = {"recipe": "vanilla", "data": "ring8", "steps": 10, "batch_size": 16, "log_every": 5, "eval.every": 10,
           "eval.n": 200, "eval.final_n": 0}
    one = ganforge.train(dict(cfg, out=str(tmp_path / "one")), progress=False)
    mp.spawn(_equivalence_worker, args=(2, _free_port(), dict(cfg, out=str(tmp_path / "two"))), nprocs=2, join=True)
    from ganforge.train.logger import read_log

    a = [r for r in read_log(one) if "Metrics/modes" in r][-1]
    b = [r for r in read_log(tmp_path / "two") if "Metrics/modes" in r][-1]
    assert a["Metrics/modes"] == b["Metrics/modes"] and abs(a["Metrics/fd"] - b["Metrics/fd"]) < 1e-3
    x = torch.rand(10, 1, 8, 8)
    from ganforge.data import DataRequest, load_dataset

    real = load_dataset("digits", DataRequest(resolution=8))
    shards = [ev.sample_outputs(part, real) for part in torch.tensor_split(x, 3)]
    joined = {"digits_outputs": tuple(torch.cat(p) for p in zip(*[s["digits_outputs"] for s in shards]))}
    whole = ev.evaluate_samples(x, real, ["fd", "prdc", "classes"])
    split = ev.evaluate_samples(x, real, ["fd", "prdc", "classes"], precomputed=joined)
    assert {k: v for k, v in whole.items() if k != "protocol"} == {k: v for k, v in split.items() if k != "protocol"}
