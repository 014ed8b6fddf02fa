"""Image-to-image translation: data formats, networks, metrics, pix2pix / CycleGAN training and resume,
and the translate command."""
import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.data import DataRequest, load_dataset
from ganforge.data.translation import HELD_OUT_PHOTOS, TRAIN_PHOTOS, photo_patches
from ganforge.errors import DataError
from ganforge.inference.tiling import translate_tiled
from ganforge.metrics.translation import apply_lut, baseline, fit_lut, paired_metrics, psnr, ssim
from ganforge.models.translation import PatchDiscriminator, UNetGenerator, patch_layers_for, patch_receptive_field
from ganforge.recipes.base import StepContext
from ganforge.recipes.translation import ImagePool, KeepLuminance, jitter_flip
from ganforge.runs import checkpoint as ck

TINY = {"resolution": 16, "batch_size": 4, "net.width": 4, "net.max_channels": 8, "steps": 4, "log_every": 2,
        "sample_every": 2, "checkpoint_every": 2, "eval.final_n": 0}
CYCLE = {**TINY, "recipe": "cyclegan", "translate.blocks": 1, "translate.pool": 3, "translate.self_reg": 1.0,
         "translate.nce": 1.0, "translate.distance": 1.0, "cut.patches": 16, "cut.head": 16}


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def paired_dir(tmp_path_factory):
    """Six side-by-side A|B pairs, 32x16: grey left half, its colourised right half."""
    root = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(0)
    for i in range(6):
        a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        save(root / f"p{i}.png", np.concatenate([a, 255 - a], axis=1))
    return root


@pytest.fixture(scope="module")
def unpaired_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("unpaired")
    rng = np.random.default_rng(1)
    for i in range(5):
        save(root / "A" / f"a{i}.png", rng.integers(0, 128, (20, 24), dtype=np.uint8))
        save(root / "B" / f"b{i}.png", rng.integers(128, 256, (16, 16), dtype=np.uint8))
    save(root / "B" / "b5.png", rng.integers(128, 256, (16, 16), dtype=np.uint8))
    return root


# ---------------------------------------------------------------------------- data


def test_paired_side_by_side_holds_out_a_fixed_fifth(paired_dir):
    train = load_dataset(f"paired:{paired_dir}", DataRequest(resolution=8))
    test = load_dataset(f"paired:{paired_dir}", DataRequest(resolution=8, split="test"))
    assert train.paired and train.x.shape == (4, 3, 8, 8) and train.x_b.shape == (4, 3, 8, 8)
    assert len(test) == 2 and not any(torch.equal(t, x) for t in test.x for x in train.x)  # ceil(20 %) held out
    assert torch.allclose(train.x + train.x_b, torch.ones_like(train.x), atol=1e-5)  # halves stay partners


def test_paired_folders_must_match_by_name_and_size(tmp_path):
    for name in ("x", "y"):
        save(tmp_path / "A" / f"{name}.png", np.zeros((8, 8), np.uint8))
    save(tmp_path / "B" / "x.jpg", np.zeros((8, 8), np.uint8))  # extensions may differ
    save(tmp_path / "B" / "z.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"1 in A without a partner in B \(y\); 1 in B without a partner in A \(z\)"):
        load_dataset(f"paired:{tmp_path}", DataRequest(resolution=8))
    (tmp_path / "A" / "y.png").unlink()
    (tmp_path / "B" / "z.png").unlink()
    save(tmp_path / "B" / "x.jpg", np.zeros((6, 8), np.uint8))
    with pytest.raises(DataError, match=r"x.png is 8x8 but its partner .*x.jpg is 8x6"):
        load_dataset(f"paired:{tmp_path}", DataRequest(resolution=8))


def test_side_by_side_needs_an_even_width(tmp_path):
    save(tmp_path / "odd.png", np.zeros((8, 17), np.uint8))
    with pytest.raises(DataError, match="needs an even width"):
        load_dataset(f"paired:{tmp_path}", DataRequest(resolution=8))


def test_unpaired_reads_two_folders_of_any_sizes(unpaired_dirs):
    d = load_dataset(f"unpaired:{unpaired_dirs / 'A'},{unpaired_dirs / 'B'}", DataRequest(resolution=8))
    assert not d.paired and d.x.shape == (5, 1, 8, 8) and d.x_b.shape == (6, 1, 8, 8)
    assert d.x.max() < 0.51 and d.x_b.min() > 0.49
    with pytest.raises(DataError, match="expected unpaired:DIR_A,DIR_B"):
        load_dataset(f"unpaired:{unpaired_dirs / 'A'}", DataRequest(resolution=8))


def test_digits2typeset_domains_and_fresh_test_renders():
    train = load_dataset("digits2typeset", DataRequest(resolution=16))
    test = load_dataset("digits2typeset", DataRequest(resolution=16, split="test"))
    assert train.x.shape == (1437, 1, 16, 16) and train.x_b.shape == (1500, 1, 16, 16)
    assert torch.equal(torch.bincount(test.y_b), torch.full((10,), 50))
    assert not torch.equal(train.x_b[:10], test.x_b[:10])  # another render seed
    assert 0.05 < train.x_b.mean() < 0.4  # white glyphs on black


def test_photo_tasks_hold_out_whole_photos():
    assert not set(TRAIN_PHOTOS) & set(HELD_OUT_PHOTOS)
    _, train_sources = photo_patches("train", 16)
    _, test_sources = photo_patches("test", 16)
    assert set(train_sources) == set(TRAIN_PHOTOS) and set(test_sources) == set(HELD_OUT_PHOTOS)
    d = load_dataset("gray2color", DataRequest(resolution=16, split="test"))
    luma = (d.x_b * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert torch.allclose(d.x, luma, atol=1e-6)
    e = load_dataset("edges2photos", DataRequest(resolution=16, split="test"))
    assert set(e.x.unique().tolist()) <= {0.0, 1.0}


# ---------------------------------------------------------------------------- networks


def test_unet_shapes_and_dropout_after_the_bottleneck():
    g = UNetGenerator(1, 3, 32, width=4, max_channels=16)
    assert g(torch.randn(2, 1, 32, 32)).shape == (2, 3, 32, 32)
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3


@pytest.mark.parametrize("n_layers", [0, 1, 2])
def test_patchgan_receptive_field_is_measured(n_layers):
    """The input pixels one output logit depends on span exactly patch_receptive_field(n)."""
    d = PatchDiscriminator(1, 4, n_layers, norm="batch").eval()
    x = torch.randn(1, 1, 96, 96, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert rows.max() - rows.min() + 1 == patch_receptive_field(n_layers)
    assert [patch_receptive_field(n) for n in (0, 1, 2, 3)] == [10, 16, 34, 70]
    assert patch_layers_for(256) == 3 and patch_layers_for(64) == 1 and patch_layers_for(16, pixels=10) == 0


def test_keep_luminance_preserves_the_input_luma():
    conv = torch.nn.Conv2d(1, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([0.3, -0.2, 0.1]).view(3, 1, 1, 1))
        conv.bias.zero_()
    net = KeepLuminance(torch.nn.Sequential(conv, torch.nn.Tanh()))
    x = torch.rand(2, 1, 8, 8) - 0.5  # colours within range: no clamping at the ends
    y = net(x)
    luma = (y * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert torch.allclose(luma, x, atol=1e-5)


# ---------------------------------------------------------------------------- metrics


def test_psnr_and_ssim_match_reference_implementations():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 24, 24, generator=g)
    y = (x + 0.1 * torch.randn(3, 3, 24, 24, generator=g)).clamp(0, 1)
    for i in range(3):
        a, b = x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy()
        assert psnr(x[i : i + 1], y[i : i + 1]).item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1),
                                                                        abs=1e-3)
        ref = structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    channel_axis=2)
        assert ssim(x[i : i + 1], y[i : i + 1]).item() == pytest.approx(ref, abs=1e-5)
    assert ssim(x, x).allclose(torch.ones(3))


def test_lookup_recovers_a_colour_map_from_grey_and_from_colour():
    grey = torch.randint(0, 256, (4, 1, 8, 8)).float() / 255
    colour = torch.cat([grey, 1 - grey, grey**2], 1)  # each grey level has one colour
    assert torch.allclose(apply_lut(fit_lut(grey, colour), grey), colour, atol=1e-5)
    palette = torch.tensor([[0.0, 0.0, 0.5], [1.0, 0.6, 0.1], [0.3, 0.9, 0.3]])
    labels = palette[torch.randint(0, 3, (4, 8, 8))].permute(0, 3, 1, 2)  # a label map in palette colours
    target = labels.flip(1)  # one colour per label
    assert torch.allclose(apply_lut(fit_lut(labels, target), labels), target, atol=1e-6)


def test_paired_metrics_name_the_strongest_trivial_baseline():
    from ganforge.data import Dataset

    a = torch.rand(6, 1, 16, 16)
    train = Dataset("t", a, None, "image", [], {}, 1 - a, None, True)  # the target is the inverted input
    test = Dataset("t", a[:3], None, "image", [], {}, 1 - a[:3], None, True)
    result = paired_metrics(1 - a[:3], test, train)
    assert set(result["baselines"]) == {"input", "mean", "lut"} and result["fd"] == pytest.approx(0, abs=1e-3)
    assert result["protocol"]["baseline"] == "lut" and result["baseline_psnr"] > 40  # the lookup inverts exactly
    assert result["baselines"]["input"]["psnr"] < result["baselines"]["lut"]["psnr"]
    assert torch.allclose(baseline("mean", a[:2], train), (1 - a).mean(0, keepdim=True).expand(2, -1, -1, -1))


# ---------------------------------------------------------------------------- training pieces


def ctx(seed=0):
    return StepContext(0, 4, lambda: (None, None), torch.Generator().manual_seed(seed))


def test_jitter_and_flip_treat_both_images_of_a_pair_alike():
    a = torch.rand(4, 1, 16, 16)
    b = torch.cat([a, a * 0.5], 1)
    ja, jb = jitter_flip([a, b], ctx(), 0.25, True)
    assert ja.shape == a.shape and torch.allclose(jb[:, :1], ja) and torch.allclose(jb[:, 1:], ja * 0.5)
    assert not torch.allclose(ja, a)


def test_distance_change_is_zero_for_a_translation_that_keeps_standardised_distances():
    from ganforge.recipes.translation import distance_change, pairwise_l1

    x = torch.rand(6, 1, 8, 8)
    d = pairwise_l1(x)
    assert len(d) == 15 and d[0] == pytest.approx((x[0] - x[1]).abs().mean().item())
    scaled = 0.3 + 2 * x  # distances scaled by 2: the same once standardised by the output domain's batch
    assert distance_change(x, scaled, 0.3 + 2 * x).item() == pytest.approx(0, abs=1e-5)
    assert distance_change(x, x[torch.randperm(6)], x).item() > 0.1  # swapped images do not keep their distances
    assert distance_change(x[:2], x[:2], x[:2]).item() == 0  # one pair: no spread to standardise by


def test_image_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first, ctx()), first)  # filling: shown as they come
    later = torch.full((64, 1, 1, 1), 9.0)
    shown = pool.query(later, ctx(1))
    old = (shown != 9).sum().item()
    assert 0 < old <= 4 and (pool.images == 9).sum() >= old  # stored ones came out, new ones went in
    restored = ImagePool(4)
    restored.load_state_dict(pool.state_dict())
    assert torch.equal(restored.images, pool.images)


# ---------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory, paired_dir):
    out = tmp_path_factory.mktemp("p2p") / "run"
    return ganforge.train(dict(TINY, recipe="pix2pix", data=f"paired:{paired_dir}", out=str(out),
                               **{"eval.final_n": 10}), progress=False)


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory, unpaired_dirs):
    out = tmp_path_factory.mktemp("cyc") / "run"
    return ganforge.train(dict(CYCLE, data=f"unpaired:{unpaired_dirs / 'A'},{unpaired_dirs / 'B'}", out=str(out)),
                          progress=False)


def test_pix2pix_run_reports_psnr_ssim_against_the_baseline(pix2pix_run, capsys):
    report = (pix2pix_run / "report.md").read_text()
    assert "PSNR" in report and "strongest trivial baseline: " in report
    assert (pix2pix_run / "samples" / "final.png").is_file()
    result = ganforge.evaluate(pix2pix_run)
    assert {"psnr", "ssim", "l1", "fd", "baseline_psnr", "baseline_ssim", "baseline_fd"} <= result.keys()
    assert result["protocol"]["images"].startswith("held out")
    with pytest.raises(ganforge.errors.GanforgeError, match="measured by its own metrics"):
        ganforge.evaluate(pix2pix_run, metrics="fd")
    capsys.readouterr()
    assert main(["eval", str(pix2pix_run)]) == 0
    assert "baselines.lut.psnr" in capsys.readouterr().out  # every trivial baseline, one row per measure


def test_cyclegan_translates_both_ways(cycle_run):
    from ganforge.train.logger import read_log

    logged = read_log(cycle_run)[-1]
    assert ({"Loss/G/cycle", "Loss/G/identity", "Loss/G/self_reg", "Loss/G/nce", "Loss/G/distance", "Loss/D/A",
             "Loss/D/B"} <= logged.keys())
    t = ganforge.load(cycle_run)
    assert t.directions == ("AtoB", "BtoA")
    x = torch.rand(2, 3, 30, 20)  # colour and any size in; the model's grey 16 px out
    assert t.translate(x).shape == (2, 1, 16, 16) and t.translate(x[0], "BtoA").shape == (1, 16, 16)


@pytest.mark.parametrize("recipe", ["pix2pix", "cyclegan"])
def test_resume_is_exact(tmp_path, recipe, paired_dir, unpaired_dirs):
    """Straight 6 steps == 3 steps, stop, resume to 6: weights, optimizers, samplers and the image pools."""
    data = f"paired:{paired_dir}" if recipe == "pix2pix" else f"unpaired:{unpaired_dirs / 'A'},{unpaired_dirs / 'B'}"
    base = dict(CYCLE if recipe == "cyclegan" else TINY, recipe=recipe, data=data, steps=6, checkpoint_every=3,
                **{"optim.lr_decay": "none"})  # the preset's decay follows the total steps, which differ here
    straight = ganforge.train(dict(base, out=str(tmp_path / "a")), progress=False)
    half = ganforge.train(dict(base, steps=3, out=str(tmp_path / "b")), progress=False)
    resumed = ganforge.train({"steps": 6}, resume=half, progress=False)
    wa, wb = (ck.load_weights(ck.latest_checkpoint(r)) for r in (straight, resumed))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = (ck.load_state(ck.latest_checkpoint(r)) for r in (straight, resumed))
    if recipe == "cyclegan":
        assert len(sa["recipe"]["pool_A"]["images"]) == 3
        for k in ("pool_A", "pool_B"):
            assert torch.equal(sa["recipe"][k]["images"], sb["recipe"][k]["images"])
        assert torch.equal(sa["sampler_b"]["perm"], sb["sampler_b"]["perm"])


def test_translation_recipes_default_to_their_bundled_task():
    from ganforge.recipes import resolve

    assert resolve({"recipe": "cyclegan"}).data == "digits2typeset"
    assert resolve({"recipe": "pix2pix"}).data == "edges2photos"
    cfg = resolve({"recipe": "pix2pix", "data": "gray2color"})
    assert cfg.data == "gray2color" and cfg.translate.keep_luminance and cfg.resolution == 64


def test_cyclegan_losses_that_compare_domains_need_equal_channels(tmp_path):
    with pytest.raises(ganforge.errors.ConfigError, match="translate.identity=0.5 needs domains with the same"):
        ganforge.train(dict(CYCLE, data="gray2color", out=str(tmp_path / "x")), progress=False)


def test_a_translation_recipe_needs_two_domains(tmp_path, unpaired_dirs):
    with pytest.raises(ganforge.errors.ConfigError, match="has one"):
        ganforge.train(dict(TINY, recipe="pix2pix", data="digits", out=str(tmp_path / "x")), progress=False)
    with pytest.raises(ganforge.errors.ConfigError, match="is unpaired: use --recipe cyclegan"):
        ganforge.train(dict(TINY, recipe="pix2pix", data=f"unpaired:{unpaired_dirs / 'A'},{unpaired_dirs / 'B'}",
                            out=str(tmp_path / "y")), progress=False)


# ---------------------------------------------------------------------------- translate


class Identity:
    """A stand-in recipe whose translation returns its input: tiling must then give back the image."""

    def translate(self, G, x, direction="AtoB"):
        return x


def test_tiles_blend_without_seams():
    img = torch.rand(3, 37, 23)
    out = translate_tiled(Identity(), torch.nn.Linear(1, 1), img, "AtoB", tile=16)
    assert out.shape == img.shape and torch.allclose(out, img, atol=1e-6)
    small = torch.rand(1, 5, 9)  # smaller than a tile: padded, cropped back
    assert torch.allclose(translate_tiled(Identity(), torch.nn.Linear(1, 1), small, "AtoB", tile=16), small, atol=1e-6)


def test_translate_command(tmp_path, capsys, pix2pix_run, cycle_run):
    src = tmp_path / "in"
    save(src / "one.png", np.full((40, 28, 3), 200, np.uint8))
    save(src / "sub" / "two.png", np.zeros((16, 16), np.uint8))
    (src / "broken.png").write_bytes(b"not an image")
    assert main(["translate", str(pix2pix_run), "--input", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err  # the rest is translated; the bad file is named and the exit code says so
    assert "wrote 2 translation(s)" in err and "skipped 1 unreadable file(s): broken.png" in err
    assert Image.open(tmp_path / "out" / "sub" / "two.png").size == (16, 16)
    assert main(["translate", str(pix2pix_run), "--input", str(src / "one.png"), "--out", str(tmp_path / "t.png"),
                 "--fit", "tile"]) == 0
    assert Image.open(tmp_path / "t.png").size == (28, 40)  # tiled at its own scale: the input's size
    np.save(tmp_path / "x.npy", np.random.rand(3, 1, 16, 16).astype(np.float32))
    assert main(["translate", str(cycle_run), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy"),
                 "--direction", "BtoA"]) == 0
    assert np.load(tmp_path / "y.npy").shape == (3, 1, 16, 16)
    capsys.readouterr()


@pytest.mark.parametrize("args, message", [
    (["--direction", "BtoA"], "--direction BtoA is not allowed for this pix2pix run (one direction only)"),
    (["--direction", "sideways"], "allowed: AtoB"),
    (["--fit", "stretch"], "--fit 'stretch' is not allowed"),
])
def test_translate_refuses_bad_options(tmp_path, capsys, pix2pix_run, args, message):
    save(tmp_path / "a.png", np.zeros((16, 16), np.uint8))
    code = main(["translate", str(pix2pix_run), "--input", str(tmp_path / "a.png"), "--out", str(tmp_path / "b.png"),
                 *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_translate_and_sample_refuse_the_wrong_kind_of_run(tmp_path, capsys, pix2pix_run, tiny_run):
    save(tmp_path / "a.png", np.zeros((16, 16), np.uint8))
    assert main(["translate", str(pix2pix_run), "--input", str(tmp_path / "a.png"),
                 "--out", str(tmp_path / "a.png")]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert main(["sample", str(pix2pix_run), "--out", str(tmp_path / "s.png")]) == 2
    assert "use ganforge translate" in capsys.readouterr().err
    assert main(["translate", str(tiny_run), "--input", str(tmp_path / "a.png"), "--out", str(tmp_path / "c.png")]) == 2
    assert "not a translation run" in capsys.readouterr().err

