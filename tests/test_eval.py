"""`ganforge eval` and evaluation during training, end to end."""
import json

import numpy as np
import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.data import DataRequest, load_dataset


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no inception weights here
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def real_test_npy(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "real_digits.npy"
    np.save(path, load_dataset("digits", DataRequest(resolution=16, split="test")).x.numpy())
    return path


def test_real_held_out_digits_score_as_real(capsys, real_test_npy):
    code = main(["eval", "--images", str(real_test_npy), "--data", "digits", "--metrics", "fd,classes,prdc",
                 "--json"])
    r = last_json(capsys)
    assert code == 0
    assert r["class_confident"] >= 0.9 and r["coverage"] >= 0.8 and r["classes_present"] == 10
    p = r["protocol"]
    assert p["extractor"] == "digits" and p["n_fake"] == 360 and p["n_real"] == 1437
    assert p["reference"] == "digits (train split)" and p["seed"] == 0 and "ganforge_version" in p


def test_fd_orders_clean_below_noisy(capsys, real_test_npy, tmp_path):
    x = torch.from_numpy(np.load(real_test_npy))
    g = torch.Generator().manual_seed(0)
    fds = []
    for std in (0.0, 0.1, 0.3):
        path = tmp_path / f"n{std}.npy"
        np.save(path, (x + std * torch.randn(x.shape, generator=g)).clamp(0, 1).numpy())
        main(["eval", "--images", str(path), "--metrics", "fd", "--json"])
        fds.append(last_json(capsys)["fd"])
    assert fds[0] < fds[1] < fds[2]


def test_fid_offline_is_a_clear_error(capsys, real_test_npy):
    code = main(["eval", "--images", str(real_test_npy), "--metrics", "fid"])
    err = capsys.readouterr().err
    assert code == 2 and "weights-inception-2015-12-05-6726825d.pth" in err and "--inception-weights" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["eval"], "give either a run directory or --images"),
    (["eval", "--images", "/no/x.npy"], "does not exist"),
    (["eval", "--images", "{npy}", "--metrics", "nope"], "unknown metric 'nope'"),
    (["eval", "--images", "{npy}", "--n", "1"], "--n 1 is not allowed"),
])
def test_eval_errors(capsys, real_test_npy, args, message):
    code = main([a.format(npy=real_test_npy) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err


def test_eval_a_run_and_evaluate_during_training(capsys, tmp_path):
    run = ganforge.train({"resolution": 8, "batch_size": 8, "net.width": 8, "net.z_dim": 8, "steps": 4,
                          "log_every": 2, "eval.every": 2, "eval.n": 40, "eval.metrics": "fd,classes",
                          "eval.best": "class_confident", "out": str(tmp_path / "run")}, progress=False)
    log = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in log if "Metrics/fd" in r]
    assert [r["step"] for r in evals] == [2, 4] and all("Metrics/class_confident" in r for r in evals)
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["path"] == "best" and best["step"] in (2, 4)
    assert ganforge.load(run, checkpoint="best").sample(2, seed=0).shape == (2, 1, 8, 8)
    assert main(["eval", str(run), "--n", "30", "--metrics", "fd,kid,classes", "--json"]) == 0
    r = last_json(capsys)
    assert {"fd", "kid_mean", "kid_std", "class_confident"} <= set(r) and r["protocol"]["n_fake"] == 30
    assert ganforge.evaluate(run, n=30, metrics="fd")["fd"] == pytest.approx(r["fd"])


def test_modes_for_a_2d_run(capsys, tmp_path):
    import math

    from ganforge.data.toy2d import ring_means

    run = ganforge.train({"data": "ring8", "steps": 2, "batch_size": 16, "out": str(tmp_path / "r")}, progress=False)
    assert main(["eval", str(run), "--json"]) == 0
    r = last_json(capsys)
    assert {"modes", "hq_frac", "reverse_kl"} <= set(r) and r["protocol"]["n_fake"] == 2500
    assert r["modes"] in range(9) and 0 <= r["hq_frac"] <= 1
    assert (r["reverse_kl"] is None or math.isnan(r["reverse_kl"])) if r["modes"] == 0 else \
        0 <= r["reverse_kl"] <= math.log(8) + 1e-9
    # the run's numbers are its 2,500 seed-0 samples counted by the rule: nearest of the 8 means, within 3 std
    x = ganforge.load(run).draw(2500, 0)[0].double()
    d, k = (torch.cdist(x, ring_means(8, 1.0).double()) / 0.01).min(1)
    counts = torch.bincount(k[d < 3], minlength=8)
    assert r["modes"] == int((counts > 0).sum()) and r["hq_frac"] == pytest.approx(float(counts.sum()) / 2500)

    def modes(points):
        return ganforge.evaluate(images=points, data="ring8", metrics="modes")

    means = ring_means(8, 1.0)
    on = means.repeat(50, 1)  # 50 samples exactly on each mode
    every = modes(on)
    assert every["modes"] == 8 and every["hq_frac"] == 1.0 and every["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    one = modes(means[:1].repeat(400, 1))  # all on one mode: KL(p || uniform) = log 8
    assert one["modes"] == 1 and one["hq_frac"] == 1.0 and one["reverse_kl"] == pytest.approx(math.log(8))
    radial = means / means.norm(dim=1, keepdim=True)
    near, beyond = on + 2.9 * 0.01 * radial.repeat(50, 1), on + 3.1 * 0.01 * radial.repeat(50, 1)
    assert modes(torch.cat([near, beyond]))["hq_frac"] == pytest.approx(0.5), "high quality: within 3 std"
    half = modes(torch.cat([means[:4].repeat(50, 1), 3 * means.repeat(25, 1)]))  # 4 modes hit, half far out
    assert half["modes"] == 4 and half["hq_frac"] == pytest.approx(0.5) and half["reverse_kl"] == pytest.approx(
        math.log(2))
    far = modes(10 * means.repeat(50, 1))
    assert far["modes"] == 0 and far["hq_frac"] == 0.0 and math.isnan(far["reverse_kl"])
