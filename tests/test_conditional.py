"""Conditional recipes, label handling, InfoGAN codes and `ganforge synthesize`."""
import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.errors import ConfigError

TINY = {"resolution": 8, "batch_size": 10, "net.width": 8, "net.z_dim": 8, "steps": 3, "log_every": 3,
        "checkpoint_every": 3}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cond")
    return {r: ganforge.train(dict(TINY, recipe=r, out=str(root / r)), progress=False)
            for r in ("cgan", "projection", "acgan")}


@pytest.mark.parametrize("recipe", ["cgan", "projection", "acgan"])
def test_conditional_recipes_sample_by_label(runs, recipe):
    g = ganforge.load(runs[recipe])
    assert g.num_classes == 10
    x, labels = g.draw(12, seed=0)
    assert x.shape == (12, 1, 8, 8) and labels.shape == (12,) and labels.min() >= 0 and labels.max() <= 9
    a = g.sample(4, seed=1, labels=3)
    b = g.sample(4, seed=1, labels=torch.full((4,), 3))
    assert torch.equal(a, b)
    with pytest.raises(ganforge.errors.GanforgeError, match=r"label 10 is out of range; allowed 0..9"):
        g.sample(2, labels=10)


def test_acgan_logs_its_class_loss(runs):
    import json

    log = [json.loads(x) for x in (runs["acgan"] / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in log if "Loss/D" in r][-1]
    assert "Loss/D/class" in losses and "Loss/G/class" in losses
    final = log[-1]  # measured at the end of training for the report
    assert {"Metrics/fd", "Metrics/recall", "Metrics/coverage", "Metrics/label_agreement"} <= set(final)


def _cells(grid: Image.Image, side: int) -> torch.Tensor:
    """The cells of a saved sample grid (torchvision's layout: 2 px padding, cells enlarged to 64 px)
    -> [rows, cols, side, side] grey values in [0, 1], each cell sampled back down to ``side``."""
    a = torch.from_numpy(np.asarray(grid.convert("L"), dtype=np.float32) / 255)
    pitch, scale = 64 + 2, 64 // side
    rows, cols = (a.shape[0] - 2) / pitch, (a.shape[1] - 2) / pitch
    assert rows == int(rows) and cols == int(cols), f"{tuple(a.shape)} is not a grid of 64 px cells"
    return torch.stack([torch.stack([a[2 + r * pitch : 2 + r * pitch + 64 : scale, 2 + c * pitch : 2 + c * pitch + 64
                                       : scale] for c in range(int(cols))]) for r in range(int(rows))])


def test_conditional_grid_has_one_row_per_class(runs, tmp_path):
    from ganforge.recipes import resolve
    from ganforge.train.trainer import GRID_SAMPLES, Trainer

    per = GRID_SAMPLES // 10  # 6 samples of each of the 10 digits
    assert _cells(Image.open(runs["cgan"] / "samples" / "final.png"), 8).shape[:2] == (10, per)
    # which labels each row was drawn with: a fresh trainer's grid, watched while it is drawn and saved
    trainer = Trainer(resolve(dict(TINY, recipe="cgan")), run_dir=tmp_path / "run", progress=False)
    drawn, generate, preview = [], trainer.recipe.generate, trainer.recipe.preview
    trainer.recipe.generate = lambda G, z, labels=None, **k: drawn.append(labels.clone()) or generate(G, z, labels, **k)
    trainer.recipe.preview = lambda *a, **k: drawn.append(preview(*a, **k)) or drawn[-1]
    trainer.write_samples(final=True)
    labels, samples = drawn
    cells = _cells(Image.open(tmp_path / "run" / "samples" / "final.png"), 8)
    assert cells.shape[:2] == (10, per)
    assert torch.equal(labels.view(10, per), torch.arange(10)[:, None].expand(10, per)), "row r: label r only"
    # and the grid's cell (r, c) is sample r * per + c: the one nearest to it of all 60
    d = torch.cdist(cells.flatten(2).flatten(0, 1), samples.flatten(1))
    assert torch.equal(d.argmin(1), torch.arange(10 * per))


def test_eval_reports_label_agreement_for_conditional_runs(runs):
    out = ganforge.evaluate(runs["cgan"], metrics=["classes"], n=40)
    assert 0.0 <= out["label_agreement"] <= 1.0 and "class_confident" in out
    unlabelled = ganforge.load(runs["cgan"]).sample(20)  # no requested labels: no agreement to report
    assert "label_agreement" not in ganforge.evaluate(images=unlabelled, metrics=["classes"])


def test_sample_npy_writes_labels_beside(capsys, runs, tmp_path):
    out = tmp_path / "x.npy"
    assert main(["sample", str(runs["cgan"]), "--n", "7", "--out", str(out)]) == 0
    assert np.load(out).shape == (7, 1, 8, 8)
    labels = np.load(tmp_path / "x.labels.npy")
    assert labels.shape == (7,) and labels.dtype == np.int64
    assert main(["sample", str(runs["cgan"]), "--n", "3", "--label", "4", "--out", str(tmp_path / "y.npy")]) == 0
    assert (np.load(tmp_path / "y.labels.npy") == 4).all()


def test_synthesize_writes_a_labelled_folder_with_provenance(capsys, runs, tmp_path):
    out = tmp_path / "synth"
    assert main(["synthesize", str(runs["acgan"]), "--per-class", "2", "--out", str(out), "--seed", "5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [str(i) for i in range(10)]
    img = Image.open(out / "7" / "00001.png")
    assert img.text["ganforge:synthetic"] == "true" and img.text["ganforge:label"] == "7"
    assert img.text["ganforge:seed"] == "5" and "acgan" in img.text["ganforge:recipe"]
    back = ganforge.data.load_dataset(f"folder:{out}", ganforge.data.DataRequest(resolution=8))
    assert len(back) == 20 and back.class_names == [str(i) for i in range(10)]
    assert torch.equal(torch.bincount(back.y), torch.full((10,), 2))


def test_synthesize_and_label_errors(capsys, tmp_path, tiny_run):
    assert main(["synthesize", str(tiny_run), "--per-class", "2", "--out", str(tmp_path / "s")]) == 2
    assert "needs a class-conditional run" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="needs labelled data"):
        ganforge.train(dict(TINY, recipe="cgan", data="faces100", out=str(tmp_path / "f")), progress=False)


def test_conditional_on_2d_points_with_labels(tmp_path):
    from ganforge.data import DataSpec
    from ganforge.recipes import build_recipe, resolve

    spec = DataSpec("toy", "points", (2,), ["a", "b", "c"])
    for name in ("cgan", "projection", "acgan"):
        recipe = build_recipe(resolve(flags={"recipe": name, "data": "ring8"}), spec)
        z = recipe.latent(5, None, torch.device("cpu"))
        assert recipe.generate(recipe.nets["G"], z, torch.tensor([0, 1, 2, 0, 1])).shape == (5, 2)


def test_infogan_code_head_trains(tmp_path):
    import json

    info = {"recipe": "dcgan", "net.z_discrete": 4, "reg.info": 1.0}
    run = ganforge.train(dict(TINY, **info, out=str(tmp_path / "i")), progress=False)
    log = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in log if "Loss/G" in r][-1]["Loss/G/class"] > 0
    with pytest.raises(ConfigError, match="needs a categorical code"):
        ganforge.train({**TINY, **info, "net.z_discrete": 0, "out": str(tmp_path / "j")}, progress=False)
    with pytest.raises(ConfigError, match="reg.info=1.0 .* unconditional recipes"):
        ganforge.train({**TINY, **info, "recipe": "cgan", "out": str(tmp_path / "k")}, progress=False)
