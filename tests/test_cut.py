"""Contrastive unpaired translation (CUT, FastCUT): the PatchNCE loss against its formula, the layers it
compares, training both ways and one way, exact resume; and the labels2scenes paired task."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.data import DataRequest, load_dataset
from ganforge.errors import ConfigError, GanforgeError
from ganforge.models.cut import PatchSampler, encode, encoder_layers, patch_ids, patch_nce
from ganforge.models.translation import ResnetGenerator
from ganforge.runs import checkpoint as ck

TINY_CUT = {"recipe": "cut", "data": "digits2typeset", "resolution": 8, "batch_size": 4, "net.width": 4,
            "net.max_channels": 8, "translate.blocks": 2, "cut.patches": 16, "cut.head": 8, "steps": 4,
            "log_every": 2, "sample_every": 2, "checkpoint_every": 2, "eval.final_n": 0}


def test_patch_nce_matches_its_formula():
    torch.manual_seed(0)
    q, k = F.normalize(torch.randn(2 * 5, 7), dim=1), F.normalize(torch.randn(2 * 5, 7), dim=1)
    tau, total = 0.07, 0.0
    for img in range(2):  # per query: -log softmax of its positive among itself and the image's other keys
        qi, ki = q[img * 5 : (img + 1) * 5], k[img * 5 : (img + 1) * 5]
        for p in range(5):
            others = [qi[p] @ ki[j] for j in range(5) if j != p]
            logits = torch.stack([qi[p] @ ki[p], *[torch.tensor(-10.0)] , *others]) / tau  # the masked self
            total += -torch.log_softmax(logits, 0)[0]
    assert patch_nce(q, k, 2, tau).item() == pytest.approx(total.item() / 10, rel=1e-5)


def test_patch_nce_rewards_keeping_each_patch_in_place():
    torch.manual_seed(1)
    k = F.normalize(torch.randn(64, 16), dim=1)
    kept, shuffled = patch_nce(k.clone(), k, 1), patch_nce(k[torch.randperm(64)], k, 1)
    assert kept < 0.1 < math.log(64) < shuffled


def test_encoder_layers_follow_the_reference_and_refuse_bad_ones():
    assert encoder_layers(2, 9) == [0, 4, 7, 12, 16]  # pixels, both downsamplings, blocks 2 and 6 of 9
    assert encoder_layers(1, 6, "0,7") == [0, 7]
    with pytest.raises(ConfigError, match=r"cut.layers='0,99' is not allowed.*from 0 to 12"):
        encoder_layers(1, 6, "0,99")


def test_patch_sampler_shares_positions_and_projects_to_unit_vectors():
    g = ResnetGenerator(1, 1, 4, 2, 1, "instance", 8)
    layers = encoder_layers(1, 2)
    feats = encode(g, torch.rand(3, 1, 8, 8), layers)
    ids = patch_ids(feats, 10, torch.Generator().manual_seed(0))
    out = PatchSampler([f.shape[1] for f in feats], 64)(feats, ids)
    assert [len(i) for i in ids] == [10] * len(layers)  # 14x14 padded pixels, 4x4 maps: 10 positions each
    assert all(o.shape == (3 * len(i), 64) and torch.allclose(o.norm(dim=1), torch.ones(len(o))) for o, i in
               zip(out, ids))


@pytest.fixture(scope="module")
def cut_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cut") / "run"
    return ganforge.train(dict(TINY_CUT, out=str(out), **{"cut.directions": "both"}), progress=False)


def test_cut_trains_both_ways_measures_both_and_exports(cut_run, tmp_path):
    from ganforge.cli import main
    from ganforge.train.logger import read_log

    logged = read_log(cut_run)[-1]
    assert {"Loss/G", "Loss/G/nce", "Loss/G/nce_idt", "Loss/D", "D/accuracy"} <= logged.keys()
    t = ganforge.load(cut_run)
    assert t.directions == ("AtoB", "BtoA")
    assert t.translate(torch.rand(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    result = ganforge.evaluate(cut_run)
    assert {"cycle_l1", "fd_ab", "fd_ba", "labels_kept_ab", "labels_kept_ba", "identity_kept_ab"} <= result.keys()
    weights = ck.split_weights(ck.load_weights(ck.latest_checkpoint(cut_run)))
    assert {"G", "D", "F"} <= weights.keys()  # the projection heads are trained and saved with the run
    assert main(["export", str(cut_run), "--direction", "BtoA", "--out", str(tmp_path / "c.onnx")]) == 0


def test_cut_and_fastcut_presets():
    from ganforge.recipes import resolve

    cut, fast = resolve({"recipe": "cut"}), resolve({"recipe": "fastcut", "data": "edges2photos"})
    assert cut.data == "digits2typeset" and cut.cut.directions == "both" and cut.cut.nce_idt
    assert (fast.cut.nce, fast.cut.nce_idt, fast.cut.flip_equivariance) == (10.0, False, True)
    assert cut.loss == fast.loss == "lsgan"


def test_one_way_fastcut_resumes_exactly_and_refuses_the_other_direction(tmp_path):
    """FastCUT B -> A (flip coins and patch positions from the run's generator): 4 steps == 2, stop, resume to 4."""
    base = dict(TINY_CUT, recipe="fastcut", **{"optim.lr_decay": "none", "cut.directions": "BtoA"})
    straight = ganforge.train(dict(base, out=str(tmp_path / "a")), progress=False)
    half = ganforge.train(dict(base, steps=2, out=str(tmp_path / "b")), progress=False)
    resumed = ganforge.train({"steps": 4}, resume=half, progress=False)
    wa, wb = (ck.load_weights(ck.latest_checkpoint(r)) for r in (straight, resumed))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    t = ganforge.load(straight)
    assert t.directions == ("BtoA",) and t.translate(torch.rand(1, 8, 8), "BtoA").shape == (1, 8, 8)
    assert torch.equal(t.translate(torch.full((1, 8, 8), 0.5)), t.translate(torch.full((1, 8, 8), 0.5), "BtoA"))
    from ganforge.cli import main

    np.save(tmp_path / "in.npy", np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32))
    assert main(["translate", str(straight), "--input", str(tmp_path / "in.npy"), "--out",
                 str(tmp_path / "o.npy")]) == 0
    assert np.load(tmp_path / "o.npy").shape == (2, 1, 8, 8)  # no --direction: the run's one direction
    with pytest.raises(GanforgeError, match="--direction AtoB is not allowed .*one direction only.*allowed: BtoA"):
        t.translate(torch.rand(1, 8, 8), "AtoB")
    result = ganforge.evaluate(straight)
    assert "fd_ba" in result and "fd_ab" not in result and "cycle_l1" not in result


# ---------------------------------------------------------------------------- labels2scenes


def test_labels2scenes_pairs_label_maps_with_shaded_scenes():
    from ganforge.data.labels2scenes import PALETTE, render_pair
    from ganforge.metrics.translation import apply_lut, fit_lut, psnr

    test = load_dataset("labels2scenes", DataRequest(resolution=16, split="test"))
    assert test.paired and len(test) == 500 and test.x.shape[1:] == test.x_b.shape[1:] == (3, 16, 16)
    colours = test.x[:50].permute(0, 2, 3, 1).reshape(-1, 3).unique(dim=0)
    assert all(any(torch.allclose(c, torch.from_numpy(p)) for p in PALETTE) for c in colours)  # labels only
    first_train = render_pair(np.random.default_rng(0), 16)[0]  # the training split's first scene (seed 0)
    assert not any(torch.equal(torch.from_numpy(first_train), x) for x in test.x)
    grey = load_dataset("labels2scenes", DataRequest(resolution=16, split="test", channels=1))
    assert grey.x.shape[1] == grey.x_b.shape[1] == 1 and len(grey.x[:50].unique()) == 5  # 5 classes, 5 greys
    lookup = apply_lut(fit_lut(test.x, test.x_b), test.x)  # even fitted on the same scenes
    assert 12 < psnr(lookup, test.x_b).mean() < 30  # a per-pixel lookup gets the silhouettes, not the shading
