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


def _sync_job(rank: int, cfg: dict, result_dir: str) -> None:
    from ganforge.recipes import resolve
    from ganforge.train.trainer import Trainer

    trainer = Trainer(resolve(cfg), progress=False)
    G = trainer.recipe.nets["G"]
    trainer.fit()  # shuts the process group down at the end
    flat = torch.cat([p.detach().flatten() for p in G.parameters()])
    torch.save({"weights": flat, "batch": trainer.batch, "group_left": not dist.is_initialized()},
               os.path.join(result_dir, f"rank{rank}.pt"))


def _jobs_worker(rank: int, world: int, jobs: list, result_dir: str) -> None:
    """One of the two processes: trains each job in turn, each in a process group of its own (a fresh port)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    torch.set_num_threads(1)
    import ganforge

    for name, port, cfg in jobs:
        os.environ["MASTER_PORT"] = str(port)
        if name == "sync":
            _sync_job(rank, cfg, result_dir)
        else:
            ganforge.train(cfg, progress=False)


SYNC = {"resolution": 8, "batch_size": 8, "net.width": 8, "net.z_dim": 8, "steps": 4, "log_every": 2,
        "checkpoint_every": 2, "device": "cpu"}
EVAL = {"recipe": "vanilla", "data": "ring8", "steps": 10, "batch_size": 16, "log_every": 5, "eval.every": 10,
        "eval.n": 200, "eval.final_n": 0}


def _job_cfg(name: str) -> dict:
    if name == "sync":
        return SYNC
    if name == "eval":
        return EVAL
    return {"batch_size": 16, "log_every": 1, "checkpoint_every": 1000, "sample_every": 1000, **EQUIVALENCE[name][0]}


@pytest.fixture(scope="module")
def two_processes(request, tmp_path_factory):
    """The two-process runs of the tests selected in this module, all trained by one pair of spawned processes:
    starting and importing a process costs more than these runs. ``{job: run directory}``."""
    here = request.node.path
    names = []
    for item in request.session.items:
        if item.path == here:
            callspec = getattr(item, "callspec", None)
            name = callspec.params["name"] if callspec and "name" in callspec.params else \
                JOB_OF_TEST.get(item.originalname)
            if name and name not in names:
                names.append(name)
    root = tmp_path_factory.mktemp("ddp")
    jobs = [(name, _free_port(), dict(_job_cfg(name), out=str(root / name))) for name in names]
    mp.spawn(_jobs_worker, args=(2, jobs, str(root)), nprocs=2, join=True)
    return {name: root / name for name in names} | {"results": root}


@pytest.mark.slow
@pytest.mark.xdist_group("ddp")
def test_two_process_training_keeps_ranks_in_sync(two_processes):
    out, results = two_processes["sync"], two_processes["results"]
    r0 = torch.load(results / "rank0.pt", weights_only=True)
    r1 = torch.load(results / "rank1.pt", weights_only=True)
    assert r0["batch"] == r1["batch"] == 4, "the global batch is split across the two processes"
    assert torch.equal(r0["weights"], r1["weights"])
    assert (out / "checkpoints" / "latest.json").is_file() and (out / "samples" / "final.png").is_file()
    assert r0["group_left"] and r1["group_left"], "fit() leaves the process group"


def _losses(run):
    import json

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if any(k.startswith("Loss/") for k in r)]
    keys = ["Loss/D", "Loss/G"] if "Loss/D" in rows[0] else sorted(k for k in rows[0] if k.startswith("Loss/"))
    return torch.tensor([[r[k] for k in keys] for r in rows])


# recipe config, max |loss difference| over the 30-step curve: the README's "2e-7 without batch norm,
# 0.008 with it". Measured (torch 2.x, CPU, gloo): 1.2e-7 to 2.4e-7 without batch norm, i.e. one or two float32
# ulps of losses between 1 and 2 (equal up to rounding); 0.00805 for DCGAN, whose batch norm sees B/2 per rank
# instead of B. The bounds are those measurements: ROUNDING and 0.0081 (tighter than the README's words can be).
ROUNDING = 2.5e-7
EQUIVALENCE = {
    "vanilla": ({"recipe": "vanilla", "data": "ring8", "steps": 30}, ROUNDING),
    "dcgan": ({"recipe": "dcgan", "resolution": 16, "net.width": 8, "net.z_dim": 8, "steps": 30,
               "augment": "translation,cutout"}, 0.0081),
    # ADA's r_t is all-reduced, so p moves alike; minibatch stddev and path length (whose batch is a
    # per-rank share) are off, as they are the only parts that see a rank's batch apart
    "stylegan2": ({"recipe": "stylegan2", "resolution": 8, "net.width": 4, "net.max_channels": 8, "net.z_dim": 8,
                   "style.w_dim": 8, "style.map_layers": 2, "reg.mbstd": 0, "style.pl_weight": 0, "steps": 30,
                   "reg.lazy_every": 4, "augment": "ada", "ada.interval": 2, "ada.kimg": 0.1, "ada.p": 0.3}, ROUNDING),
    # translation: crops and flips are drawn for the global batch; domain B comes from the paired indices
    # (pix2pix) or a sampler of its own (CycleGAN). Off: dropout (torch's per-process RNG) and the image
    # pool, whose history is per rank.
    "pix2pix": ({"recipe": "pix2pix", "data": "edges2photos", "resolution": 16, "net.width": 4,
                 "net.max_channels": 8, "translate.norm": "instance", "translate.dropout": 0, "steps": 30,
                 "eval.final_n": 0}, ROUNDING),
    # CycleGAN's curves are compared over 6 steps (measured: 2.4e-7 apart): after that this tiny pair of
    # generators amplifies rounding, so that even one process with threads=1 and threads=2 drifts apart
    # (2e-4 by step 8, 0.04 by step 30); a semantic difference (wrong batch or slice) shows from step 1
    "cyclegan": ({"recipe": "cyclegan", "data": "digits2typeset", "resolution": 16, "net.width": 4,
                  "net.max_channels": 8, "translate.blocks": 1, "translate.pool": 0, "steps": 6,
                  "eval.final_n": 0}, ROUNDING),
    # diffusion: timesteps and noise drawn for the global batch, GroupNorm (per sample): equal up to rounding
    "ddpm": ({"recipe": "ddpm", "resolution": 8, "diffusion.channels": "8,16", "diffusion.attention": "0,1",
              "diffusion.sample_steps": 2, "steps": 10, "eval.final_n": 0}, ROUNDING),
}


@pytest.mark.slow
@pytest.mark.xdist_group("ddp")
@pytest.mark.parametrize("name", list(EQUIVALENCE))
def test_two_processes_with_global_batch_b_follow_one_process_with_batch_b(tmp_path, name, two_processes):
    """Data, latents and augmentations are drawn for the global batch and split, gradients and logged
    statistics are averaged: the loss curves agree (exactly up to rounding without batch norm)."""
    import ganforge

    cfg, tol = _job_cfg(name), EQUIVALENCE[name][1]
    one = ganforge.train(dict(cfg, out=str(tmp_path / "one")), progress=False)
    a, b = _losses(one), _losses(two_processes[name])
    assert a.shape == b.shape and len(a) == cfg["steps"]
    assert (a - b).abs().max() <= tol, (a - b).abs().max()


JOB_OF_TEST = {"test_two_process_training_keeps_ranks_in_sync": "sync",
               "test_evaluation_during_ddp_training_splits_feature_extraction_and_matches_one_process": "eval"}


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


@pytest.mark.slow
def test_torchrun_elastic_restart_resumes_from_the_last_checkpoint(tmp_path):
    import json
    import signal
    import subprocess
    import time

    out = tmp_path / "run"
    # 100 steps: the kill lands right after the step-20 checkpoint, 80 steps (seconds) before the end
    agent = subprocess.Popen(_torchrun(out, _free_port(), 100, "--max-restarts", "1"), stdout=subprocess.PIPE,
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
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == 100


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.xdist_group("ddp")
def test_evaluation_during_ddp_training_splits_feature_extraction_and_matches_one_process(tmp_path, two_processes):
    """Each rank extracts the features of its half of the samples; rank 0's metrics equal those of
    the same samples measured in one process."""
    import ganforge
    from ganforge.metrics import evaluate as ev

    one = ganforge.train(dict(EVAL, out=str(tmp_path / "one")), progress=False)
    from ganforge.train.logger import read_log

    a = [r for r in read_log(one) if "Metrics/modes" in r][-1]
    b = [r for r in read_log(two_processes["eval"]) if "Metrics/modes" in r][-1]
    assert a["Metrics/modes"] == b["Metrics/modes"] and abs(a["Metrics/fd"] - b["Metrics/fd"]) < 1e-3
    x = torch.rand(10, 1, 8, 8)
    from ganforge.data import DataRequest, load_dataset

    real = load_dataset("digits", DataRequest(resolution=8))
    shards = [ev.sample_outputs(part, real) for part in torch.tensor_split(x, 3)]
    joined = {"digits_outputs": tuple(torch.cat(p) for p in zip(*[s["digits_outputs"] for s in shards]))}
    whole = ev.evaluate_samples(x, real, ["fd", "prdc", "classes"])
    split = ev.evaluate_samples(x, real, ["fd", "prdc", "classes"], precomputed=joined)
    assert {k: v for k, v in whole.items() if k != "protocol"} == {k: v for k, v in split.items() if k != "protocol"}
