"""Faults users hit: damaged checkpoints, runs from other versions, two writers, full disks,
signals, logs cut short by a kill. Each is refused in one line or survived, never a crash."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.runs import checkpoint as ck
from ganforge.runs.rundir import RunLock


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run  # shared read-only: each test below damages a copy


def copy_run(run, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


def one_line_error(capsys, *args) -> str:
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_truncated_weights_are_refused_naming_the_file(run, tmp_path, capsys):
    r = copy_run(run, tmp_path)
    w = ck.latest_checkpoint(r) / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    err = one_line_error(capsys, "sample", str(r), "--out", str(tmp_path / "x.png"))
    assert "weights.safetensors" in err and "truncated" in err


def test_tampered_state_is_refused_by_its_hash(run, tmp_path):
    r = copy_run(run, tmp_path)
    s = ck.latest_checkpoint(r) / "state.safetensors"
    data = bytearray(s.read_bytes())
    data[-1] ^= 0xFF  # same size, one flipped byte
    s.write_bytes(bytes(data))
    with pytest.raises(GanforgeError, match="state.safetensors does not match its SHA-256"):
        ganforge.train({"steps": 6}, resume=r, progress=False)


class Payload:
    """Unpickling this would create a file: proof that nothing was executed if the file is absent."""

    target = ""

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_named_as_weights_is_refused_and_never_executed(run, tmp_path, capsys):
    r = copy_run(run, tmp_path)
    ckpt = ck.latest_checkpoint(r)
    (ckpt / "manifest.json").unlink()  # as a checkpoint of an older ganforge, or a mailed one, would be
    Payload.target = str(tmp_path / "pwned")
    torch.save({"x": Payload()}, ckpt / "weights.safetensors")
    err = one_line_error(capsys, "sample", str(r), "--out", str(tmp_path / "x.png"))
    assert "is not a readable safetensors file" in err and "weights.safetensors" in err
    import pickle

    (ckpt / "state.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(GanforgeError, match="state.safetensors is not a readable safetensors file"):
        ck.load_state(ckpt)
    assert not (tmp_path / "pwned").exists()


def test_weights_of_another_config_are_one_line(run, tmp_path, capsys):
    r = copy_run(run, tmp_path)
    cfg = (r / "config.yaml").read_text().replace("width: 8", "width: 16", 1)
    (r / "config.yaml").write_text(cfg)
    err = one_line_error(capsys, "sample", str(r), "--out", str(tmp_path / "x.png"))
    assert "do not fit the run's network" in err


def test_pointer_to_a_missing_checkpoint_falls_back_to_the_newest_complete_one(run, tmp_path):
    r = copy_run(run, tmp_path)
    (r / "checkpoints" / "latest.json").write_text(json.dumps({"step": 99, "path": "step-0000099"}))
    assert ck.latest_checkpoint(r).name == "step-0000004"
    (r / "checkpoints" / "latest.json").write_text("{trunc")
    assert ck.latest_checkpoint(r).name == "step-0000004"
    assert ganforge.load(r).sample(2, seed=0).shape == (2, 1, 8, 8)


def test_runs_of_a_newer_format_are_refused_older_ones_load(run, tmp_path, capsys):
    r = copy_run(run, tmp_path)
    meta = json.loads((r / "run.json").read_text())
    meta.pop("format")  # what ganforge 0.1.0 wrote before the key existed: still loads
    (r / "run.json").write_text(json.dumps(meta))
    assert ganforge.load(r).sample(1, seed=0).shape == (1, 1, 8, 8)
    meta.update(format=7, ganforge="9.0.0")
    (r / "run.json").write_text(json.dumps(meta))
    err = one_line_error(capsys, "sample", str(r))
    assert "written by ganforge 9.0.0 (run format 7)" in err and "upgrade" in err
    (r / "run.json").write_text(json.dumps(dict(meta, format=1)))
    (r / "config.yaml").write_text((r / "config.yaml").read_text() + "new_key_of_v2: 1\n")
    err = one_line_error(capsys, "sample", str(r))
    assert "config.yaml (written by ganforge 9.0.0) cannot be read" in err and "new_key_of_v2" in err
    manifest = ck.latest_checkpoint(r) / "manifest.json"
    manifest.write_text(json.dumps(dict(json.loads(manifest.read_text()), format=3, ganforge="9.0.0")))
    with pytest.raises(GanforgeError, match="format 3, written by ganforge 9.0.0"):
        ck.load_weights(ck.latest_checkpoint(r))


def test_a_second_process_on_the_same_run_dir_is_refused(tiny):
    lock = RunLock(tiny_path := __import__("pathlib").Path(tiny["out"])).acquire()  # another live run holds it
    try:
        with pytest.raises(GanforgeError, match=f"in use by another ganforge process \\(pid {os.getpid()}\\)"):
            ganforge.train(tiny, progress=False)
    finally:
        lock.release()
    assert ganforge.train(tiny, progress=False) == tiny_path  # released: the run proceeds


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tiny, monkeypatch):
    real_save, calls = ck.save_file, []

    def full_disk(tensors, path):
        calls.append(path)
        if len(calls) == 5:  # checkpoint 0 (2 files), step 2 (2 files), then the weights at step 4
            raise OSError(28, "No space left on device")
        return real_save(tensors, path)

    monkeypatch.setattr(ck, "save_file", full_disk)
    with pytest.raises(GanforgeError) as e:
        ganforge.train(dict(tiny, steps=6), progress=False)
    msg = str(e.value)
    assert "No space left on device" in msg and "step-0000002 is intact" in msg and "\n" not in msg
    run = __import__("pathlib").Path(tiny["out"])
    assert ck.latest_checkpoint(run).name == "step-0000002"
    assert not list((run / "checkpoints").glob(".tmp-*"))
    monkeypatch.setattr(ck, "save_file", real_save)
    assert ganforge.train({"steps": 6}, resume=run, progress=False) == run  # room again: it resumes


def test_unwritable_log_is_one_line_and_keeps_the_checkpoint(tiny, monkeypatch):
    from ganforge.train import logger

    def fail(*a, **k):
        raise OSError(30, "Read-only file system", str(tiny["out"]) + "/metrics.jsonl")

    monkeypatch.setattr(logger.RunLogger, "log", fail)
    with pytest.raises(GanforgeError, match="cannot write .*metrics.jsonl: Read-only file system; the last complete"):
        ganforge.train(tiny, progress=False)
    assert ck.latest_checkpoint(__import__("pathlib").Path(tiny["out"])).name == "step-0000000"


def test_a_log_line_cut_short_by_a_kill_is_dropped_on_resume(tiny):
    run = ganforge.train(dict(tiny, steps=4), progress=False)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "Loss/D": 0.3')  # killed mid-write
    ganforge.train({"steps": 6}, resume=run, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "Loss/D" in r]
    assert steps == [2, 4, 6]


def _train_args(out, steps):
    return ["train", "--out", str(out), "--resolution", "8", "--batch-size", "8", "--steps", str(steps), "--set",
            "net.width=8", "--set", "net.z_dim=8", "--set", "log_every=5", "--checkpoint-every", "1000", "--set",
            "sample_every=1000", "--set", "threads=1"]


def _train_cmd(out, steps):
    return [sys.executable, "-m", "ganforge", *_train_args(out, steps)]


@pytest.fixture(scope="module")
def straight_200(tmp_path_factory):
    """The uninterrupted run a signalled one must end equal to: the same command, in this process."""
    out = tmp_path_factory.mktemp("straight") / "run"
    assert main(_train_args(out, 200)) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_a_checkpoint_and_exits_0_and_the_resume_is_exact(tmp_path, sig, straight_200):
    run = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(run, 200), stderr=subprocess.PIPE, text=True)  # a real process to signal
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").is_file() and time.time() < deadline:  # training has started
        time.sleep(0.05)
    proc.send_signal(sig)
    t0 = time.time()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.time() - t0 < 10
    stopped = json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    assert 0 < stopped < 200 and f"stopped by {signal.Signals(sig).name} at step {stopped}" in err
    assert main(["train", "--resume", str(run)]) == 0  # `ganforge train --resume RUN`, in this process
    a, b = ck.load_weights(ck.latest_checkpoint(straight_200)), ck.load_weights(ck.latest_checkpoint(run))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_random_kill_9_loop_leaves_a_loadable_run_that_resumes_identically(tmp_path):
    """benchmarks/kill_loop.py's loop, with kills timed by the run's progress rather than by the clock (on a
    loaded machine a clock-timed kill lands before the first checkpoint and checks nothing): one during
    start-up, the others at random moments after a checkpoint (training steps, grid and checkpoint writes).
    After each kill the run loads and its latest checkpoint is bit-identical to the reference's of that step."""
    import random
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from kill_loop import ARGS, log_steps_and_losses, same_checkpoint, train_cmd

    steps, seed, rng = 120, 1, random.Random(1)
    reference, run = tmp_path / "reference", tmp_path / "killed"
    cmd = train_cmd(reference, steps, seed, False)
    assert cmd[:4] == [sys.executable, "-m", "ganforge", "train"] and set(ARGS) <= set(cmd)
    assert main(cmd[3:]) == 0  # the reference: the same command, in this process
    checked = []
    for kill in range(3):  # the first in start-up, the others 0-0.3 s after the run's next checkpoint
        resume = (run / "config.yaml").is_file() and (run / "run.json").is_file()
        proc = subprocess.Popen(train_cmd(run, steps, seed, resume), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        target = 25 + max([int(p.name[5:]) for p in run.glob("checkpoints/step-*")], default=0)
        if kill and target < steps:
            deadline = time.time() + 60
            while not (run / "checkpoints" / f"step-{target:07d}").is_dir() and proc.poll() is None and \
                    time.time() < deadline:
                time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3) if kill and target < steps else rng.uniform(0.5, 1.5))
        assert proc.poll() is None, "the run ended before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if kill:
            latest = ck.latest_checkpoint(run)
            assert ganforge.load(run).sample(2, seed=0).shape == (2, 1, 8, 8)
            assert same_checkpoint(latest, reference / "checkpoints" / latest.name), latest.name
            checked.append(int(latest.name[5:]))
    assert len(checked) == 2 and min(checked) >= 25, checked
    assert main(["train", "--resume", str(run)]) == 0  # to the end
    assert same_checkpoint(ck.latest_checkpoint(run), ck.latest_checkpoint(reference))
    assert log_steps_and_losses(run) == log_steps_and_losses(reference)


@pytest.mark.slow
def test_a_signal_to_a_script_using_the_api_checkpoints_then_ends_the_script(tmp_path):
    """ganforge.train checkpoints and returns the signal to the caller: the script ends as it would have."""
    run = tmp_path / "run"
    script = ("import ganforge; ganforge.train({'recipe': 'dcgan', 'resolution': 8, 'batch_size': 8, 'steps': 100000, "
              f"'net.width': 8, 'net.z_dim': 8, 'log_every': 5, 'threads': 1, 'out': {str(run)!r}}}, progress=False); "
              "print('script went on')")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").is_file() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM and "script went on" not in out
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] > 0
