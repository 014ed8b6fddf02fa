"""Super-resolution: data and degradation, the metrics, SRGAN / ESRGAN training, tiled upscaling, the CLI."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.data.superres import degrade, gaussian_kernels
from ganforge.errors import ConfigError
from ganforge.runs import checkpoint as ck

TINY_SR = {"recipe": "esrgan", "resolution": 16, "batch_size": 4, "net.width": 8, "sr.blocks": 1, "sr.growth": 4,
           "steps": 4, "sr.pretrain": 2, "log_every": 1, "sample_every": 2, "checkpoint_every": 2, "eval.final_n": 0,
           "optim.lr_decay": "none"}  # resume tests change --steps, which would move a cosine schedule


def test_degradation_is_antialiased_bicubic_8bit_with_optional_blur_and_noise():
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 16, 16)
    lr = degrade(hr, 4)
    ref = torch.nn.functional.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1)
    assert lr.shape == (2, 3, 4, 4) and torch.allclose(lr, ref, atol=0.5 / 255 + 1e-6)
    assert torch.equal(lr, torch.round(lr * 255) / 255), "quantised to 8 bits like a saved image"
    k = gaussian_kernels(torch.tensor([0.5, 2.0]), 9)
    assert torch.allclose(k.sum((1, 2)), torch.ones(2)) and k[1].max() < k[0].max()
    flat = torch.full((1, 3, 16, 16), 0.5)
    assert torch.allclose(degrade(flat, 4, blur=torch.tensor([2.0]), quantize=False), torch.full((1, 3, 4, 4), 0.5),
                          atol=1e-5), "blur keeps a flat image flat"
    noisy = degrade(flat, 4, noise=torch.full((1, 3, 4, 4), 0.1), quantize=False)
    assert torch.allclose(noisy, torch.full_like(noisy, 0.6), atol=1e-5)


def test_y_channel_metrics_match_references():
    from skimage.metrics import peak_signal_noise_ratio

    from ganforge.metrics.superres import image_scores, rgb_to_y

    torch.manual_seed(0)
    truth = torch.rand(3, 32, 32)
    out = (truth + 0.05 * torch.randn(3, 32, 32)).clamp(0, 1)
    y = rgb_to_y(torch.tensor([1.0, 1.0, 1.0]).view(1, 3, 1, 1))
    assert float(y) == pytest.approx(235 / 255, abs=1e-4), "BT.601 white is 235"
    s = image_scores(out, truth, 4)
    yo, yt = rgb_to_y(out[None])[0, 0, 4:-4, 4:-4], rgb_to_y(truth[None])[0, 0, 4:-4, 4:-4]
    assert s["psnr"] == pytest.approx(peak_signal_noise_ratio(yt.numpy(), yo.numpy(), data_range=1.0), abs=1e-3)
    same = image_scores(truth, truth, 4)
    assert same["hf_ratio"] == pytest.approx(1.0) and same["hf_corr"] == pytest.approx(1.0)
    blurry = torch.nn.functional.avg_pool2d(truth[None], 3, 1, 1)[0]
    assert image_scores(blurry, truth, 4)["hf_ratio"] < 0.5


def _window_keys(x: torch.Tensor, side: int) -> torch.Tensor:
    """A float64 key of every side x side window of 8-bit images [N, 3, H, W] in [0, 1] -> [N, H-side+1, W-side+1]:
    a fixed random separable weighting of the window's integer pixel values (equal windows, equal keys)."""
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(n, generator=g, dtype=torch.float64) for n in (3, side, side))
    v = torch.einsum("nchw,c->nhw", (x.double() * 255).round(), a)[:, None]
    return F.conv2d(F.conv2d(v, b.view(1, 1, side, 1)), c.view(1, 1, 1, side))[:, 0]


def _found_in(patches: torch.Tensor, images: list[torch.Tensor]) -> torch.Tensor:
    """[N] bool: whether each patch [3, s, s] is pixel for pixel a window of one of ``images``."""
    side = patches.shape[-1]
    keys, where = [], []
    for i, img in enumerate(images):
        k = _window_keys(img[None], side)[0]
        keys.append(k.flatten())
        ys, xs = torch.meshgrid(torch.arange(k.shape[0]), torch.arange(k.shape[1]), indexing="ij")
        where.append(torch.stack([torch.full_like(ys, i), ys, xs], -1).view(-1, 3))
    keys, where = torch.cat(keys), torch.cat(where)
    keys, order = keys.sort()
    where = where[order]
    want = _window_keys(patches, side).flatten()
    found = torch.zeros(len(patches), dtype=torch.bool)
    pos = torch.searchsorted(keys, want)
    for n, p in enumerate(pos.tolist()):
        for j in (p - 1, p):  # the nearest keys either side; a near key is checked pixel for pixel
            if 0 <= j < len(keys) and abs(keys[j] - want[n]) <= 1e-6 * (1 + abs(want[n])):
                i, y, x = where[j].tolist()
                if torch.equal(images[i][:, y : y + side, x : x + side], patches[n]):
                    found[n] = True
    return found


def test_bundled_sr_data_holds_out_whole_photos():
    from ganforge.data import DataRequest, load_dataset
    from ganforge.data.superres import SR_SCALES, _photo_native, held_out_images

    train = load_dataset("sr:photos", DataRequest(resolution=32, split="train"))
    test = load_dataset("sr:photos", DataRequest(resolution=32, split="test"))
    assert train.x.shape[1:] == (3, 32, 32)
    names = [n for n, _ in held_out_images("photos")]
    assert names == ["chelsea.png", "rocket.jpg"]
    # the held-out photos at every zoom the training crops are cut at: no training patch is a window of one
    held = [_photo_native(n, s and max(s, 32)) for n in names for s in SR_SCALES]
    assert not _found_in(test.x, held).logical_not().any(), "the search finds every held-out crop"
    leaked = _found_in(train.x, held)
    assert not leaked.any(), f"{int(leaked.sum())} training patches are cut from a held-out photo"
    assert not set(names) & set(train.info["sources"])
    with pytest.raises(ConfigError, match="not super-resolution data"):
        ganforge.train(dict(TINY_SR, data="digits", out="/nonexistent/never"), progress=False)


@pytest.mark.parametrize("side, last", [(64, 4), (96, 6), (24, 6)])
def test_discriminator_takes_any_even_patch_side(side, last):
    from ganforge.models.superres import VGGDiscriminator

    D = VGGDiscriminator(side, 3, 4, 16)
    assert D(torch.randn(2, 3, side, side)).shape == (2,) and D.features(torch.randn(1, 3, side, side))[-1].shape[
        -1] == last


def test_two_stages_resume_exactly_and_keep_both_generators(tmp_path):
    cfg = dict(TINY_SR, steps=6, **{"sr.pretrain": 3, "checkpoint_every": 2})
    straight = ganforge.train(dict(cfg, out=str(tmp_path / "a")), progress=False)
    half = ganforge.train(dict(cfg, steps=4, out=str(tmp_path / "b")), progress=False)
    resumed = ganforge.train({"steps": 6}, resume=half, progress=False)
    wa, wb = ck.load_weights(ck.latest_checkpoint(straight)), ck.load_weights(ck.latest_checkpoint(resumed))
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    nets = ck.split_weights(wa)
    assert int(nets["G_psnr"]["taken_at"]) == 3
    assert not torch.equal(nets["G_psnr"]["head.weight"], nets["G"]["head.weight"]), "the GAN stage moved G on"
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    stage1 = [r for r in rows if r.get("step", 0) <= 3 and "Loss/G/pixel" in r]
    assert stage1 and all("Loss/D" not in r for r in stage1), "no discriminator before the GAN stage"
    assert any("Loss/D" in r and "Loss/G/perceptual" in r for r in rows)


def test_vgg_content_loss_needs_a_real_weights_file_only_to_train(tmp_path):
    bad = tmp_path / "vgg.pth"
    bad.write_bytes(b"garbage")
    cfg = dict(TINY_SR, out=str(tmp_path / "run"))
    for path, message in ((tmp_path / "missing.pth", "no such file"), (bad, "not a torchvision VGG19 state dict")):
        with pytest.raises(ConfigError, match=message):
            ganforge.train(dict(cfg, **{"sr.perceptual": f"vgg19:{path}"}), progress=False)


def test_blend_interpolates_weights(sr_run):
    g = ganforge.load(sr_run)
    p0, p1 = g.network(0.0).head.weight, g.network(1.0).head.weight
    mid = g.network(0.25).head.weight
    assert torch.allclose(mid, 0.75 * p0 + 0.25 * p1, atol=1e-6)
    with pytest.raises(ganforge.errors.GanforgeError, match=r"\[0, 1\]"):
        g.network(1.5)


def test_tiled_upscaling_matches_untiled_inference(sr_run):
    g = ganforge.load(sr_run)
    torch.manual_seed(0)
    img = torch.rand(3, 37, 45)
    whole = g.upscale(img, tile=1000)
    tiled = g.upscale(img, tile=16)
    assert whole.shape == (3, 37 * 4, 45 * 4)
    assert (whole - tiled).abs().max() <= 1e-4


def test_upscale_cli_keeps_modes_skips_unreadable_and_refuses_bad_input(sr_run, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((10, 12)) * 255).astype(np.uint8)).save(src / "grey.png")
    Image.fromarray((rng.random((10, 12, 4)) * 255).astype(np.uint8)).save(src / "rgba.png")
    Image.fromarray((rng.random((10, 12)) * 65535).astype(np.uint16)).save(src / "deep.png")
    (src / "broken.png").write_bytes(b"not an image")
    assert main(["upscale", str(sr_run), "--input", str(src), "--out", str(tmp_path / "out"), "--blend", "0.5"]) == 2
    assert "skipped 1 unreadable file(s): broken.png" in capsys.readouterr().err
    modes = {p.name: (Image.open(p).mode, Image.open(p).size) for p in (tmp_path / "out").iterdir()}
    assert modes == {"grey.png": ("L", (48, 40)), "rgba.png": ("RGBA", (48, 40)), "deep.png": ("I;16", (48, 40))}
    one = src / "grey.png"
    assert main(["upscale", str(sr_run), "--input", str(one), "--out", str(one)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert main(["upscale", str(sr_run), "--input", str(one), "--out", str(tmp_path / "x.png"), "--blend", "-1"]) == 2
    assert main(["sample", str(sr_run), "--out", str(tmp_path / "s.png")]) == 2
    assert "ganforge upscale" in capsys.readouterr().err


def test_eval_reports_y_psnr_ssim_and_detail_beside_bicubic(sr_run):
    result = ganforge.evaluate(sr_run)
    for k in ("psnr", "ssim", "hf_ratio", "hf_corr", "baseline_psnr", "baseline_hf_ratio"):
        assert isinstance(result[k], float), k
    assert result["protocol"]["held_out"] == ["chelsea.png", "rocket.jpg"] and result["protocol"]["border"] == 4
    assert 20 < result["baseline_psnr"] < 40
