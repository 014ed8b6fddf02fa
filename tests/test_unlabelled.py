"""A plain folder of unlabelled images: the self-conditioned default, its clusters, and ``ganforge data``."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.recipes import resolve
from ganforge.recipes.selfcond import ClusterConfig, SelfConditionedGAN, cluster_images


def blobs(n_per: int = 30, side: int = 8) -> torch.Tensor:
    """Three well-separated kinds of picture (a bright left half, a bright top half, a bright centre), uneven
    counts (n, 2n, 3n), with a little noise."""
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(3, 1, side, side)
    masks[0, :, :, : side // 2] = 1
    masks[1, :, : side // 2] = 1
    masks[2, :, side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 1
    x = torch.cat([masks[k].expand(n_per * (k + 1), -1, -1, -1) for k in range(3)])
    return (x * 0.8 + 0.1 + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("flat")
    for i, img in enumerate(blobs()):
        Image.fromarray((img[0].numpy() * 255).astype(np.uint8), "L").save(root / f"{i:03d}.png")
    return root


def test_clusters_find_the_kinds_of_picture_numbered_by_size_and_are_deterministic():
    x = blobs()
    ids = cluster_images(x, ClusterConfig(k=3), seed=0)
    assert torch.equal(ids, cluster_images(x, ClusterConfig(k=3), seed=0))
    assert torch.bincount(ids).tolist() == [90, 60, 30]  # id 0 is the largest cluster, each kind one cluster
    assert torch.equal(ids, torch.tensor([2] * 30 + [1] * 60 + [0] * 90))


def test_cluster_count_follows_the_number_of_images():
    from ganforge.recipes.selfcond import cluster_count

    assert cluster_count(1437, ClusterConfig()) == 28  # one per 50 images
    assert cluster_count(80, ClusterConfig()) == 2 and cluster_count(100_000, ClusterConfig()) == 50
    assert cluster_count(1437, ClusterConfig(k=7)) == 7


def test_prepare_data_labels_clusters_in_proportion_and_keeps_real_classes():
    from ganforge.data import Dataset

    cfg = TrainConfig()
    cfg.sections["clusters"].k = 3
    data = SelfConditionedGAN.prepare_data(cfg, Dataset("flat", blobs()))
    spec = data.spec()
    assert spec.clustered and spec.class_names == ["cluster0", "cluster1", "cluster2"]
    assert spec.class_prior == pytest.approx([0.5, 1 / 3, 1 / 6])
    labelled = Dataset("labelled", blobs(), torch.tensor([0] * 150 + [1] * 30), class_names=["a", "b"])
    spec = SelfConditionedGAN.prepare_data(cfg, labelled).spec()
    assert not spec.clustered and spec.class_names == ["a", "b"] and spec.class_prior == pytest.approx([5 / 6, 1 / 6])
    cfg.sections["clusters"].use_labels = False  # cluster it anyway
    spec = SelfConditionedGAN.prepare_data(cfg, labelled).spec()
    assert spec.clustered and spec.class_names == ["cluster0", "cluster1", "cluster2"]


def test_a_draw_without_labels_follows_the_class_prior():
    from ganforge.data import DataSpec
    from ganforge.inference.drawing import labels_for

    class Conditional:
        texts, conditional = False, True

    spec = DataSpec("x", "image", (1, 8, 8), ["a", "b"], class_prior=[0.9, 0.1])
    labels = labels_for(Conditional(), spec, 20_000, None, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert abs(float(labels.float().mean()) - 0.1) < 0.01
    assert labels_for(Conditional(), spec, 5, 1, torch.Generator(), torch.device("cpu")).tolist() == [1] * 5


def test_a_folder_gets_the_self_conditioned_default_sized_from_the_data_and_says_why(flat_folder, capsys):
    cfg = resolve({"data": f"folder:{flat_folder}"})
    assert (cfg.recipe, cfg.resolution, cfg.steps) == ("selfcond", 8, 3000)
    err = capsys.readouterr().err.replace("\n", " ")
    assert "180 images, median side 8 px, grey, no classes -> selfcond" in err and "3,000 steps" in err
    assert resolve({"data": f"folder:{flat_folder}", "steps": 7, "resolution": 16}).steps == 7
    with pytest.raises(ConfigError, match=r"steps=0 \(from the data\) is not offered by recipe dcgan"):
        resolve({"recipe": "dcgan", "data": f"folder:{flat_folder}", "steps": 0})


def test_a_self_conditioned_run_trains_loads_and_samples_the_clusters_in_proportion(flat_folder, tmp_path, capsys):
    import ganforge

    run = ganforge.train({"data": f"folder:{flat_folder}", "steps": 4, "batch_size": 8, "net.width": 8,
                          "net.z_dim": 8, "clusters.k": 3, "eval.final_n": 0, "out": str(tmp_path / "run")},
                         progress=False)
    meta = json.loads((run / "run.json").read_text())["data"]
    assert meta["clustered"] and meta["class_prior"] == pytest.approx([0.5, 1 / 3, 1 / 6])
    g = ganforge.load(run)
    x, labels = g.draw(600, seed=3)
    assert x.shape == (600, 1, 8, 8) and torch.bincount(labels).tolist() == pytest.approx([300, 200, 100], abs=40)
    assert torch.equal(g.sample(8, seed=3), x[:8])  # one meaning of a seed
    assert main(["sample", str(run), "--label", "2", "--n", "4", "--out", str(tmp_path / "c2.png")]) == 0


def test_cluster_ids_are_not_read_as_classes_by_the_measures(flat_folder):
    from ganforge.data import DataSpec
    from ganforge.recipes import build_recipe

    cfg = resolve({"data": f"folder:{flat_folder}", "net.width": 8})
    clustered = DataSpec("x", "image", (1, 8, 8), ["c0", "c1"], class_prior=[0.5, 0.5], clustered=True)
    assert not build_recipe(cfg, clustered).labels_are_classes
    assert build_recipe(cfg, DataSpec("x", "image", (1, 8, 8), ["a", "b"])).labels_are_classes


# ---------------------------------------------------------------- ganforge data DIR


@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "messy"
    root.mkdir()
    g = np.random.default_rng(0)
    smooth = Image.fromarray((g.random((6, 8, 3)) * 255).astype(np.uint8)).resize((64, 48), Image.Resampling.BICUBIC)
    photo = np.asarray(smooth)
    Image.fromarray(photo).save(root / "a.png")
    (root / "a_copy.png").write_bytes((root / "a.png").read_bytes())  # exact duplicate
    Image.fromarray(photo).resize((96, 72), Image.Resampling.BILINEAR).save(root / "a_big.jpg", quality=95)  # near
    Image.fromarray((g.random((40, 20)) * 255).astype(np.uint8), "L").save(root / "tall.png")
    Image.new("RGBA", (30, 30), (10, 200, 30, 128)).save(root / "square.png")
    (root / "broken.jpg").write_bytes(b"not an image")
    return root


def test_data_reports_sizes_modes_duplicates_and_unreadable_files_and_writes_a_sheet(messy_folder, capsys):
    sheet = messy_folder.parent / "sheet.png"
    assert main(["data", str(messy_folder), "--sheet", str(sheet)]) == 0
    text = capsys.readouterr().out.replace("\n", " ")
    assert "6 image files, 5 readable, no classes" in text
    assert "short side px: min 20, median 48, max 72" in text
    assert "square 20%, landscape 60%, portrait 20%" in text
    assert "modes: RGB 3, RGBA 1, L 1" in text
    assert "exact duplicates (same bytes): 1 extra file in 1 group: a.png = a_copy.png" in text
    assert "near duplicates (probably the same picture): 1 extra file in 1 group: a.png = a_big.jpg" in text
    assert "unreadable: 1: broken.jpg" in text
    with Image.open(sheet) as img:
        assert img.size == (5 * 66 + 2, 68)  # the 5 readable images in one row of 64 px tiles, 2 px apart


def test_data_refuses_what_is_not_a_folder_of_images(tmp_path, capsys):
    assert main(["data", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["data", str(tmp_path)]) == 2
    assert "no image files under" in capsys.readouterr().err


def test_data_counts_the_images_of_each_class(tmp_path, capsys):
    for cls, n in (("cats", 2), ("dogs", 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.new("RGB", (20 + i, 20), (i * 50, 0, 0)).save(tmp_path / cls / f"{i}.png")
    assert main(["data", str(tmp_path), "--sheet", str(tmp_path / "sheet.png")]) == 0
    assert "3 image files, 3 readable, 2 classes (cats 2, dogs 1)" in capsys.readouterr().out


def test_a_training_grid_shows_at_most_sixteen_clusters_one_row_each(flat_folder):
    from types import SimpleNamespace

    from ganforge.data import DataSpec
    from ganforge.recipes import build_recipe

    cfg = resolve({"data": f"folder:{flat_folder}", "net.width": 8})
    spec = DataSpec("x", "image", (1, 8, 8), [f"cluster{i}" for i in range(40)], class_prior=[1 / 40] * 40,
                    clustered=True)
    labels = build_recipe(cfg, spec).grid_labels(SimpleNamespace(data=spec, device=torch.device("cpu")))
    assert labels.tolist() == [c for c in range(16) for _ in range(4)]  # 64 samples: 16 rows of 4
