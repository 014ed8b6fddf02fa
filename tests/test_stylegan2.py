"""StyleGAN2: the model's pieces against their formulas, training and exact resume, style control."""
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import loss_log

import ganforge
from ganforge.cli import main
from ganforge.errors import ConfigError
from ganforge.models.stylegan2 import (
    ModulatedConv,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    _binomial,
    downsample2d,
    stylegan_channels,
    upsample2d,
)
from ganforge.recipes import resolve
from ganforge.runs import checkpoint as ck

# 8 px, a handful of channels: every phase (D, lazy R1, G, lazy path length) runs within 4 steps
TINY_SG = {"recipe": "stylegan2", "resolution": 8, "batch_size": 8, "net.width": 4, "net.max_channels": 8,
           "net.z_dim": 8, "style.w_dim": 8, "style.map_layers": 2, "style.pl_every": 2, "reg.lazy_every": 2,
           "steps": 4, "log_every": 2, "sample_every": 2, "checkpoint_every": 2, "eval.final_n": 0}


def test_resampling_filters_keep_constants_and_shapes():
    f = _binomial()
    assert f.shape == (4, 4) and math.isclose(float(f.sum()), 1.0, rel_tol=1e-6)
    x = torch.ones(2, 3, 8, 8)
    up, down = upsample2d(x, f), downsample2d(x, f)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    assert torch.allclose(up[:, :, 2:-2, 2:-2], torch.ones(1)), "interior of an upsampled constant is that constant"
    assert torch.allclose(down[:, :, 1:-1, 1:-1], torch.ones(1))


def test_modulated_conv_matches_per_sample_weights():
    """scale -> shared conv -> demodulate equals a convolution with each sample's own modulated,
    demodulated weights (the paper's Eq. 1-3, computed as a grouped convolution)."""
    torch.manual_seed(0)
    conv = ModulatedConv(5, 6, 3, w_dim=7)
    x, w = torch.randn(3, 5, 8, 8), torch.randn(3, 7)
    s = conv.affine(w)  # [N, I]
    wt = conv.weight * conv.gain  # [O, I, k, k]
    per = wt[None] * s[:, None, :, None, None]  # [N, O, I, k, k]
    per = per * (per.square().sum((2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    ref = F.conv2d(x.reshape(1, 15, 8, 8), per.reshape(18, 5, 3, 3), padding=1, groups=3).reshape(3, 6, 8, 8)
    assert torch.allclose(conv(x, w), ref, atol=1e-5)


def test_generator_and_discriminator_shapes():
    assert stylegan_channels(32, 8, 32) == {4: 32, 8: 32, 16: 16, 32: 8}
    G = StyleGAN2Generator(8, 16, 3, width=4, max_channels=16, w_dim=8, map_layers=2, num_classes=3)
    assert G.num_ws == 2 * 4 - 2
    z, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    x = G(z, y)
    assert x.shape == (5, 3, 16, 16) and torch.isfinite(x).all()
    D = StyleGAN2Discriminator(16, 3, width=4, max_channels=16, mbstd=4, num_classes=3)
    assert D(x, y).shape == (5,)
    assert "mapping.w_avg" in G.state_dict() and "pl_mean" in G.state_dict()  # saved with the weights


def test_truncation_pulls_towards_mean_w():
    torch.manual_seed(0)
    G = StyleGAN2Generator(8, 8, 1, width=4, max_channels=8, w_dim=8, map_layers=2)
    G.mapping.w_avg.normal_()
    z = torch.randn(4, 8)
    assert torch.equal(G(z, truncation=1.0), G(z))
    avg = G(z, truncation=0.0)  # every sample is the image of the mean w
    assert torch.allclose(avg, avg[:1].expand_as(avg), atol=1e-6)
    assert torch.allclose(G.w(z, truncation=0.5), 0.5 * (G.w(z) + G.mapping.w_avg), atol=1e-6)


@pytest.mark.parametrize("resolution", [12, 4])
def test_resolution_must_be_a_power_of_two_from_8(tmp_path, resolution):
    with pytest.raises(ConfigError, match="power of two from 8 to 1024"):
        ganforge.train(dict(TINY_SG, resolution=resolution, out=str(tmp_path / "r")), progress=False)


def test_stylegan2_trains_conditional_on_digits(sg_run):
    g = ganforge.load(sg_run)
    assert g.recipe.conditional and g.num_classes == 10
    x = g.sample(6, seed=1, labels=3, truncation=0.7)
    assert x.shape == (6, 1, 8, 8) and 0 <= x.min() and x.max() <= 1
    w = ck.split_weights(ck.load_weights(ck.latest_checkpoint(sg_run)))["G"]
    assert w["mapping.w_avg"].abs().sum() > 0 and w["pl_mean"] > 0  # both running means moved
    assert {"Loss/G/pl", "Loss/D/r1", "G/pl_mean"} <= set(loss_log(sg_run)[-1])


def test_resume_is_exact_with_ada_path_length_and_w_avg(tmp_path):
    cfg = dict(TINY_SG, augment="ada", **{"ada.interval": 1, "ada.kimg": 0.2, "ada.p": 0.5})
    straight = ganforge.train(dict(cfg, steps=6, out=str(tmp_path / "a")), progress=False)
    half = ganforge.train(dict(cfg, steps=4, out=str(tmp_path / "b")), progress=False)
    resumed = ganforge.train({"steps": 6}, resume=half, progress=False)
    wa, wb = ck.load_weights(ck.latest_checkpoint(straight)), ck.load_weights(ck.latest_checkpoint(resumed))
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    sa, sb = ck.load_state(ck.latest_checkpoint(straight)), ck.load_state(ck.latest_checkpoint(resumed))
    ada_a, ada_b = sa["recipe"]["ada"], sb["recipe"]["ada"]
    assert float(ada_a["p"]) != 0.5, "p moved with a fast schedule"
    assert torch.equal(ada_a["p"], ada_b["p"]) and torch.equal(ada_a["sign_sum"], ada_b["sign_sum"])
    log_a, log_b = loss_log(straight), loss_log(resumed)
    assert [r["Augment/p"] for r in log_a] == [r["Augment/p"] for r in log_b]
    assert [r["Loss/G"] for r in log_a] == [r["Loss/G"] for r in log_b]


def test_mix_grid_is_sources_in_the_margins_and_mixtures_inside(sg_run, tmp_path, capsys):
    import numpy as np

    assert main(["mix", str(sg_run), "--row-seeds", "1,2,3", "--col-seeds", "4-5", "--out",
                 str(tmp_path / "mix.npy"), "--layers", "0-1"]) == 0
    g = ganforge.load(sg_run)
    cells = torch.from_numpy(np.load(tmp_path / "mix.npy"))
    assert torch.allclose(cells, g.mix([1, 2, 3], [4, 5], layers="0-1"), atol=1e-6), "the file is the API's grid"
    grid = cells.view(4, 3, 1, 8, 8)  # (1 + 3 row seeds) x (1 + 2 column seeds)
    assert torch.equal(grid[0, 0], torch.ones(1, 8, 8)), "blank corner"
    source = {s: g.sample(1, seed=s)[0] for s in (1, 2, 3, 4, 5)}  # what `sample --seed S` draws
    for c, s in enumerate((4, 5), 1):
        assert torch.allclose(grid[0, c], source[s], atol=1e-5), f"top row: column seed {s}"
    for r, s in enumerate((1, 2, 3), 1):
        assert torch.allclose(grid[r, 0], source[s], atol=1e-5), f"left column: row seed {s}"
        for c in (1, 2):  # coarse styles of the column, the rest of the row: unlike either
            assert (grid[r, c] - grid[r, 0]).abs().max() > 1e-3 and (grid[r, c] - grid[0, c]).abs().max() > 1e-3
    every = g.mix([1], [4], layers=f"0-{g.net.num_ws - 1}").view(2, 2, 1, 8, 8)
    assert torch.allclose(every[1, 1], every[0, 1], atol=1e-5), "every style from the column: the column's image"
    assert torch.equal(g.mix([1, 2, 3], [4, 5], layers="0-1"), cells), "deterministic"
    from PIL import Image

    assert main(["mix", str(sg_run), "--row-seeds", "1,2,3", "--col-seeds", "4-5", "--out", str(tmp_path / "mix.png"),
                 "--layers", "0-1"]) == 0
    assert Image.open(tmp_path / "mix.png").size == (3 * 66 + 2, 4 * 66 + 2), "3 columns and 4 rows of 64 px cells"


def test_interpolate_walks_from_seed_to_seed_in_every_format(sg_run, tmp_path, capsys):
    import imageio.v2 as imageio
    import numpy as np
    from PIL import Image

    for name in ("walk.gif", "walk.npy", "walk.png", "walk.mp4"):
        assert main(["interpolate", str(sg_run), "--seeds", "1,2,3", "--frames", "4", "--out",
                     str(tmp_path / name)]) == 0
    g = ganforge.load(sg_run)
    walk = torch.from_numpy(np.load(tmp_path / "walk.npy"))
    assert walk.shape == (2 * 4 + 1, 1, 8, 8)  # 4 frames per segment and the last seed
    assert torch.allclose(walk, g.interpolate([1, 2, 3], frames=4), atol=1e-6)
    assert torch.allclose(walk[0], g.sample(1, seed=1)[0], atol=1e-5), "it starts at `sample --seed 1`"
    assert all((walk[i] - walk[i + 1]).abs().max() > 1e-4 for i in range(8)), "every frame moves on"
    # a conditional walk keeps one class: with --label 5, frames 0, 4, 8 are `sample --seed S --label 5`
    labelled = g.interpolate([1, 2, 3], frames=4, label=5)
    for i, s in ((0, 1), (4, 2), (8, 3)):
        assert torch.allclose(labelled[i], g.sample(1, seed=s, labels=5)[0], atol=1e-5), f"frame {i} is seed {s}"
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 9 and gif.size == (128, 128)
    assert Image.open(tmp_path / "walk.png").size == (4 * 66 + 2, 3 * 66 + 2)  # 9 frames, 4 a row, 64 px cells
    with imageio.get_reader(tmp_path / "walk.mp4") as video:
        assert video.count_frames() == 9
    g_w = g.w(torch.randn(2, 8), torch.tensor([1, 2]))
    assert g_w.shape == (2, 8)


def test_mix_on_a_recipe_without_styles_is_one_line(tiny_run, tmp_path, capsys):
    run = tiny_run
    capsys.readouterr()
    assert main(["mix", str(run), "--row-seeds", "1", "--col-seeds", "2", "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "has no styles" in err and len(err.strip().splitlines()) == 1
    assert main(["interpolate", str(run), "--seeds", "1,2", "--frames", "3", "--out",
                 str(tmp_path / "walk.npy")]) == 0  # a walk in z works for every recipe
    assert main(["interpolate", str(run), "--seeds", "1", "--out", "w.gif"]) == 2
    assert main(["mix", str(run), "--row-seeds", "a", "--col-seeds", "2", "--out", "x.png"]) == 2


def test_stylegan_config_is_validated():
    with pytest.raises(ConfigError, match="style.mixing"):
        resolve({"recipe": "stylegan2", "style.mixing": 1.5})
    with pytest.raises(ConfigError, match="ada is a whole pipeline"):
        resolve({"augment": "ada,translation"})


def test_folder_preset_takes_its_size_from_the_data_and_turns_ada_on(tmp_path, capsys):
    from PIL import Image

    for i, size in enumerate([(40, 40), (50, 36), (64, 48)]):
        Image.new("RGB", size, (i * 60, 20, 200)).save(tmp_path / f"{i}.png")
    cfg = resolve({"recipe": "stylegan2", "data": f"folder:{tmp_path}"})
    assert cfg.resolution == 32 and cfg.augment == "ada"  # median short side 40 -> 32
    err = capsys.readouterr().err.replace("\n", " ")
    assert "3 images, median side 40 px, colour, no classes; 32 px (the largest power of two" in err
    assert resolve({"recipe": "stylegan2", "data": f"folder:{tmp_path}", "resolution": 16}).resolution == 16
    from ganforge.data import DataRequest, load_dataset

    load_dataset(f"folder:{tmp_path}", DataRequest(resolution=32))
    err = capsys.readouterr().err
    assert "3 image(s) in 3 size(s)" in err and "resized to 32x32" in err


def test_memorization_tells_copies_from_new_samples():
    from ganforge.metrics.memorization import memorization, nearest_pairs

    g = torch.Generator().manual_seed(0)
    train, held = torch.rand(50, 1, 4, 4, generator=g), torch.rand(30, 1, 4, 4, generator=g)
    copies = memorization(train[:20] + 1e-4, train, held)
    fresh = memorization(torch.rand(40, 1, 4, 4, generator=g), train, held)
    assert copies["mem_ratio"] < 0.01 and copies["mem_copies"] == 1.0
    assert 0.6 < fresh["mem_ratio"] < 1.6 and fresh["mem_copies"] < 0.2
    d = torch.cdist(held.flatten(1).double(), train.flatten(1).double()).min(1).values
    assert math.isclose(fresh["mem_real_nn"], float(d.median()), rel_tol=1e-9)
    pairs = nearest_pairs(train[:3] + 1e-4, train, n=3)
    assert torch.allclose(pairs[:3], pairs[3:], atol=1e-3)  # each sample above the training image it copies


def test_the_copy_check_catches_near_copies_that_pixel_distance_misses():
    from ganforge.data import DataRequest, load_dataset
    from ganforge.metrics.memorization import memorization

    train = load_dataset("digits", DataRequest(resolution=16, split="train")).x
    held = load_dataset("digits", DataRequest(resolution=16, split="test")).x
    pick = train[:40]
    for near_copy in (torch.roll(pick, 1, 3), pick.flip(3), pick * 0.9, ((pick - 0.5) * 0.8 + 0.5)):
        r = memorization(near_copy, train, held)
        assert r["mem_copies"] == 1.0, r
    fresh = memorization(held[:100].flip(2), train, held)  # upside-down digits: images it never saw
    assert fresh["mem_copies"] < 0.05 and 0.005 < fresh["mem_copies_heldout"] < 0.02, fresh


def test_every_run_reports_memorization_beside_quality_at_the_end(cgan_run):
    import json

    final = json.loads((cgan_run / "final_metrics.json").read_text())
    assert 0 <= final["mem_copies"] <= 1 and final["mem_ratio"] > 0 and "fd" in final
    assert "held-out real images" in final["protocol"]["memorization"]


def test_memorization_from_eval_on_a_run(sg_run, tmp_path, monkeypatch):
    import shutil

    import numpy as np
    from PIL import Image

    import ganforge.inference.drawing
    from ganforge.data import DataRequest, load_dataset

    run = shutil.copytree(sg_run, tmp_path / "run")  # the measurement writes its picture into the run
    r = ganforge.evaluate(run, metrics="memorization", n=50)
    assert "1437 training images; 360 held-out" in r["protocol"]["memorization"]
    assert r["mem_copies"] == 0 and r["mem_ratio"] > 0.5, r  # a 4-step generator copies nothing
    # the same run made to draw its own training images instead: scored as copying
    train = load_dataset("digits", DataRequest(resolution=8, split="train")).x

    def copying(recipe, G, spec, n, seed, *_, **__):  # what every measure draws through
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
        return train[pick], torch.zeros(n, dtype=torch.long)

    monkeypatch.setattr(ganforge.inference.drawing, "draw", copying)
    c = ganforge.evaluate(run, metrics="memorization", n=50)
    assert c["mem_copies"] == 1.0 and c["mem_ratio"] == 0.0 and c["mem_fake_nn"] == 0.0, c
    assert c["mem_real_nn"] == r["mem_real_nn"] > 0, "the held-out yardstick is the run's, not the samples'"
    # its picture: 16 copies above the training images they copy, two identical rows
    pic = np.asarray(Image.open(run / "memorization.png").convert("L"), dtype=np.float32)
    assert pic.shape == (2 * 66 + 2, 16 * 66 + 2)
    assert np.array_equal(pic[2:66], pic[68:132])


def test_stylegan2_trains_under_bf16_autocast_with_ada(tmp_path):
    run = ganforge.train(dict(TINY_SG, amp=True, augment="ada", steps=2, out=str(tmp_path / "amp")), progress=False)
    x = ganforge.load(run).sample(4, seed=0, truncation=0.5)
    assert torch.isfinite(x).all() and x.shape == (4, 1, 8, 8)


def test_ada_at_p0_is_identity_and_its_gradient_reaches_the_input():
    from ganforge.ada import AdaptiveAugment, ada_augment
    from ganforge.config import ADAConfig

    x = torch.rand(6, 3, 8, 8, requires_grad=True) * 2 - 1
    assert torch.allclose(ada_augment(x, torch.tensor(0.0), torch.Generator().manual_seed(0)), x, atol=1e-5)
    y = ada_augment(x, torch.tensor(1.0), torch.Generator().manual_seed(0))
    assert not torch.allclose(y, x, atol=1e-2)
    (g,) = torch.autograd.grad(y.square().sum(), x)
    assert g.abs().sum() > 0
    ada = AdaptiveAugment(ADAConfig(target=0.6, interval=1, kimg=1.0), batch_size=100)
    for step in range(3):  # D is sure of every real image: r_t = 1 > 0.6, so p rises by 100 / 1000 per step
        ada.observe(torch.ones(100), step)
    assert math.isclose(float(ada.p), 0.2, abs_tol=1e-6) and float(ada.rt) == 1.0
