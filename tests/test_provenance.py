"""Provenance metadata and the invisible watermark on written images; ganforge verify."""
import io

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image

from ganforge.cli import main
from ganforge.runs import provenance as pv


@pytest.fixture(autouse=True)
def watermark_on():
    pv.set_watermarking(True)  # the suite's conftest turns it off for speed
    yield
    pv.set_watermarking(None)


INFO = {"software": "ganforge test", "recipe": "cgan", "run": "runs/x", "run_id": "abc123", "seed": "4"}


@pytest.fixture
def photo():
    import skimage.data

    return skimage.data.astronaut()[:320, :400]  # a real photo, never marked


def jpeg(path, quality=90):
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(buf)


def test_watermark_and_metadata_round_trip_and_survive_jpeg(tmp_path, photo):
    path = pv.save_png(photo, tmp_path / "a.png", INFO)
    v = pv.verify(path)
    assert v["watermark"] is True and v["bit_errors"] == 0
    assert v["metadata"]["run_id"] == "abc123" and v["metadata"]["watermark"].startswith("dwtDctSvd")
    marked = np.asarray(Image.open(path).convert("RGB")).astype(float)
    assert 10 * np.log10(255**2 / np.mean((marked - photo) ** 2)) > 35  # invisible: PSNR of the mark
    jpeg(path).save(tmp_path / "a.jpg", quality=95)  # re-encoded at 90, then saved once more (lossy twice)
    again = pv.verify(tmp_path / "a.jpg")
    assert again["watermark"] is True and again["metadata"] == {}
    assert "watermark found" in pv.verdict_line(again) and "metadata" not in pv.verdict_line(again).split("(")[1]


def test_real_photos_small_and_grey_images(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "real.png")
    assert pv.verify(tmp_path / "real.png")["watermark"] is False
    assert "no ganforge watermark or metadata" in pv.verdict_line(pv.verify(tmp_path / "real.png"))
    pv.save_png(torch.rand(3, 64, 64), tmp_path / "small.png", INFO)  # too small: metadata only
    small = pv.verify(tmp_path / "small.png")
    assert small["watermark"] is None and small["metadata"]["watermark"] == "none"
    pv.save_png(torch.rand(1, 300, 300), tmp_path / "grey.png", INFO)  # grey: no chroma to carry it
    assert pv.verify(tmp_path / "grey.png")["watermark"] is None
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert pv.verdict_line(pv.verify(tmp_path / "junk.png")).endswith("not a readable image")


def test_watermark_off_and_large_images_marked_per_tile(tmp_path, photo):
    pv.set_watermarking(False)
    pv.save_png(photo, tmp_path / "off.png", INFO)
    pv.set_watermarking(True)
    assert pv.verify(tmp_path / "off.png")["watermark"] is False
    big = np.ascontiguousarray(np.tile(photo, (2, 2, 1))[:600, :780])  # two tile columns: 0-512, 512-780
    assert pv._spans(780) == [(0, 512), (512, 780)] and pv._spans(600) == [(0, 600)]
    assert pv.mark_array(big)
    assert pv.bit_errors(big) == 0 and pv.bit_errors(np.ascontiguousarray(big[:, 512:])) == 0


def test_cli_images_carry_provenance_and_verify_reads_them(tmp_path, capsys):
    import ganforge

    run = ganforge.train(dict(TINY, recipe="cgan", out=str(tmp_path / "run")), progress=False)
    assert main(["sample", str(run), "--n", "4", "--seed", "7", "--out", str(tmp_path / "s.png")]) == 0
    meta = pv.verify(tmp_path / "s.png")["metadata"]
    assert meta["recipe"] == "cgan" and meta["seed"] == "7" and meta["run_id"] == pv.run_id(run) != "run"
    assert pv.verify(run / "samples" / "final.png")["metadata"]["step"] == "4"  # training grids too
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "s.png"), str(run / "samples")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + len(list((run / "samples").glob("*.png")))
    assert all("made by ganforge (" in ln and "metadata found" in ln and "recipe cgan" in ln for ln in lines)


def test_no_watermark_flag(tmp_path, monkeypatch, cgan_run):
    monkeypatch.setenv("GANFORGE_WATERMARK", "1")
    run = cgan_run
    assert main(["sample", str(run), "--n", "64", "--out", str(tmp_path / "on.png")]) == 0  # 530 px: marked
    assert main(["--no-watermark", "sample", str(run), "--n", "64", "--out", str(tmp_path / "off.png")]) == 0
    assert pv.verify(tmp_path / "on.png")["watermark"] is True
    off = pv.verify(tmp_path / "off.png")
    assert off["watermark"] is False and off["metadata"]["watermark"] == "none"
