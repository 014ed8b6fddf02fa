import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganforge.cli import main
from ganforge.runs import checkpoint as ck

TINY_ARGS = ["--recipe", "dcgan", "--resolution", "8", "--batch-size", "8", "--steps", "4", "--set", "net.width=8",
             "--set", "net.z_dim=8", "--set", "log_every=2", "--checkpoint-every", "2"]


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--out", str(run), *TINY_ARGS]) == 0
    return run


@pytest.mark.parametrize("args, message", [
    (["train", "--steps", "-1"], "steps=-1 is not allowed; expected an integer >= 1"),
    (["train", "--batch-size", "0"], "batch_size=0 is not allowed"),
    (["train", "--set", "optim.lr_g=0"], "optim.lr_g=0.0 is not allowed; expected a number > 0"),
    (["train", "--set", "bogus.key=1"], "unknown config key 'bogus.key'"),
    (["train", "--recipe", "nope"], "unknown recipe 'nope'; choose from: acgan, cgan, cut, cyclegan, dcgan"),
    (["train", "--data", "nope"], "unknown dataset 'nope'"),
    (["train", "--data", "folder:/does/not/exist"], "does not exist"),
    (["train", "--device", "tpu"], "device='tpu' is not allowed"),
    (["train", "--config", "/no/such.yaml"], "config file '/no/such.yaml' does not exist"),
    (["train", "--recipe", "dcgan", "--data", "ring8", "--steps", "1"], "recipe dcgan needs image data"),
    (["train", "--resolution", "12", "--steps", "1"], "resolution=12 is not allowed for this model"),
    (["train", "--set", "augment=flip"], "unknown policy 'flip'"),
    (["train", "--steps"], "requires an argument"),
    (["train", "--no-such-flag"], "No such option"),
    (["sample", "/no/run"], "is not a ganforge run directory"),
    (["list", "bananas"], "cannot list 'bananas'"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert message in err, err
    assert "Traceback" not in err


def test_dry_run_prints_the_resolved_config(capsys):
    code, out, _ = run_cli(capsys, "train", "--dry-run", "--data", "ring8", "--set", "optim.lr_d=0.001")
    cfg = yaml.safe_load(out)
    assert code == 0 and cfg["recipe"] == "vanilla" and cfg["optim"]["lr_d"] == 0.001


def test_list(capsys):
    assert run_cli(capsys, "list", "recipes")[1].split()[0::1].count("dcgan") == 1
    out = run_cli(capsys, "list", "datasets")[1]
    for name in ("digits", "faces100", "ring8", "grid25", "folder", "mnist", "cifar10"):
        assert name in out


def test_sample_formats(capsys, trained, tmp_path):
    npy = tmp_path / "x.npy"
    assert run_cli(capsys, "sample", str(trained), "--n", "5", "--out", str(npy))[0] == 0
    x = np.load(npy)
    assert x.dtype == np.float32 and x.shape == (5, 1, 8, 8) and 0 <= x.min() and x.max() <= 1
    assert not (tmp_path / "x.labels.npy").exists()  # unconditional: no labels file
    png = tmp_path / "grid.png"
    assert run_cli(capsys, "sample", str(trained), "--n", "9", "--out", str(png))[0] == 0
    assert Image.open(png).size[0] > 64
    folder = tmp_path / "each"
    assert run_cli(capsys, "sample", str(trained), "--n", "3", "--out", str(folder))[0] == 0
    assert sorted(p.name for p in folder.iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert Image.open(folder / "00000.png").size == (8, 8)
    again = tmp_path / "y.npy"
    run_cli(capsys, "sample", str(trained), "--n", "5", "--out", str(again))
    assert np.array_equal(np.load(again), x)  # same seed, same samples
    code, _, err = run_cli(capsys, "sample", str(trained), "--label", "3")
    assert code == 2 and "unconditional" in err
    code, _, err = run_cli(capsys, "sample", str(trained), "--out", str(tmp_path / "x.jpg"))
    assert code == 2 and "expected FILE.png, FILE.npy or a directory" in err


def test_points_sample_npy(capsys, tmp_path):
    run = tmp_path / "pts"
    assert main(["train", "--data", "ring8", "--out", str(run), "--steps", "2", "--set", "net.width=8"]) == 0
    run_cli(capsys, "sample", str(run), "--n", "7", "--out", str(tmp_path / "p.npy"))
    assert np.load(tmp_path / "p.npy").shape == (7, 2)
    assert run_cli(capsys, "sample", str(run), "--out", str(tmp_path / "p.png"))[0] == 0


def test_cli_resume_matches_straight_run(capsys, tmp_path, trained):
    a, b = trained, tmp_path / "b"  # a: the same command straight through (the module's run)
    half = [x if x != "4" else "2" for x in TINY_ARGS]
    assert main(["train", "--out", str(b), *half]) == 0
    code, _, err = run_cli(capsys, "train", "--resume", str(b), "--steps", "3", "--seed", "1")
    assert code == 2 and "only --steps and --device may change" in err
    assert main(["train", "--resume", str(b), "--steps", "4"]) == 0
    wa = ck.load_weights(ck.latest_checkpoint(a))
    wb = ck.load_weights(ck.latest_checkpoint(b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((b / "checkpoints" / "latest.json").read_text())["step"] == 4
