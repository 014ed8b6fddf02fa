"""Super-resolution: data and degradation, the metrics, SRGAN / ESRGAN training, tiled upscaling, the CLI."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.data.superres import degrade, gaussian_kernels
from ganforge.errors import ConfigError
from ganforge.runs import checkpoint as ck

TINY_SR = {"recipe": "esrgan", "resolution": 16, "batch_size": 4, "net.width": 8, "sr.blocks": 1, "sr.growth": 4,
           "steps": 4, "sr.pretrain": 2, "log_every": 1, "sample_every": 2, "checkpoint_every": 2, "eval.final_n": 0,
           "optim.lr_decay": "none"}  # resume tests change --steps, which would move a cosine schedule


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    return ganforge.train(dict(TINY_SR, out=str(tmp_path_factory.mktemp("sr") / "run")), progress=False)


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


def test_bundled_sr_data_holds_out_whole_photos():
    from ganforge.data import DataRequest, load_dataset
    from ganforge.data.superres import held_out_images

    train = load_dataset("sr:photos", DataRequest(resolution=32, split="train"))
    assert train.x.shape[1:] == (3, 32, 32) and "chelsea.png" not in train.info["sources"]
    names = [n for n, _ in held_out_images("photos")]
    assert names == ["chelsea.png", "rocket.jpg"]
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
