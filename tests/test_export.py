"""ganforge export: ONNX files match PyTorch (onnxruntime, max |diff| <= 1e-4) for each kind of generator."""
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from test_translation import CYCLE
from test_translation import TINY as TINY_TR

import ganforge
from ganforge.cli import main
from ganforge.inference.drawing import latents

RUNS = {"pix2pix": dict(TINY_TR, recipe="pix2pix", data="edges2photos", steps=1), "cyclegan": dict(CYCLE, steps=1)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_run, cgan_run, sg_run, vae_run, sr_run):
    """One run of each kind of generator: the session's shared runs (read-only), and two translators."""
    root = tmp_path_factory.mktemp("export")
    trained = {k: ganforge.train(dict(cfg, out=str(root / k)), progress=False) for k, cfg in RUNS.items()}
    return trained | {"dcgan": tiny_run, "cgan": cgan_run, "stylegan2": sg_run, "vae": vae_run, "esrgan": sr_run}


def onnx_run(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("recipe", ["dcgan", "cgan", "stylegan2", "vae"])
def test_exported_samplers_draw_what_sample_draws(runs, recipe, tmp_path):
    g = ganforge.load(runs[recipe])
    out = tmp_path / "g.onnx"
    assert main(["export", str(runs[recipe]), "--out", str(out)]) == 0
    contract = json.loads((tmp_path / "g.onnx.json").read_text())
    assert contract["parity"]["max_abs_diff"] <= 1e-4 and contract["inputs"][0]["name"] == "z"
    z, labels = latents(g.recipe, g.spec, 7, 3)  # the API's seed-3 draw, through the file instead
    feeds = {"z": z.numpy()} | ({} if labels is None else {"labels": labels.numpy()})
    assert [d["name"] for d in contract["inputs"]] == list(feeds)
    want = g.draw(7, 3)[0].numpy()
    got = onnx_run(out, feeds)
    assert got.shape == want.shape == (7, *g.spec.shape) and np.abs(got - want).max() <= 1e-4


def test_exported_translators_and_upscalers(runs, tmp_path):
    t = ganforge.load(runs["cyclegan"])
    assert main(["export", str(runs["cyclegan"]), "--direction", "BtoA", "--out", str(tmp_path / "c.onnx")]) == 0
    x = torch.rand(3, *t.spec.shape_b)
    assert np.abs(onnx_run(tmp_path / "c.onnx", {"images": x.numpy()}) - t.translate(x, "BtoA").numpy()).max() <= 1e-4
    assert main(["export", str(runs["pix2pix"]), "--format", "torchscript", "--out", str(tmp_path / "p.pt")]) == 0
    assert json.loads((tmp_path / "p.pt.json").read_text())["parity"]["max_abs_diff"] <= 1e-4
    u = ganforge.load(runs["esrgan"])
    assert main(["export", str(runs["esrgan"]), "--blend", "0.5", "--out", str(tmp_path / "u.onnx")]) == 0
    lr = torch.rand(2, 3, 13, 21)  # any size: H and W are dynamic
    got = onnx_run(tmp_path / "u.onnx", {"images": lr.numpy()})
    assert got.shape == (2, 3, 52, 84)
    assert np.abs(got - u.upscale(lr, blend=0.5).numpy()).max() <= 1e-4


def test_refusals_are_one_line(ddpm_run, capsys):
    run = ddpm_run
    capsys.readouterr()
    assert main(["export", str(run)]) == 2
    assert "cannot export: a ddpm run samples with ddim-3" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "tflite"]) == 2
    assert "--format 'tflite' is not allowed; expected onnx or torchscript" in capsys.readouterr().err
