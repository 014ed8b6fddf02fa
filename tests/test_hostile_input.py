"""Hostile, broken and unusual input: refused in one line with exit code 2 and nothing executed,
or - for unusual but valid images - read the documented way and trained on."""
import io
import pickle
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.data import DataRequest, load_dataset


def one_line_error(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


class Payload:
    target = ""

    def __reduce__(self):
        return (open, (self.target, "w"))


# ------------------------------------------------------------------ config files
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "is not a text file"),
    (b"\xff\xfe\xfa junk", "is not UTF-8 text"),
    (b"steps: !!python/object/apply:os.system ['touch PWNED']\n", "is not valid YAML"),
    (b"net: !!python/name:os.system\n", "is not valid YAML"),
    (BILLION_LAUGHS.encode(), "do not allow anchors or aliases"),
    (b"steps: [1, 2]\n", "steps: [1, 2] is not a valid int"),
    (b"steps: 1.5\n", "steps: 1.5 is not a valid int"),
    (b"net: 5\n", "net: expected a mapping"),
    (b"no_such_key: 1\n", "unknown config key 'no_such_key'"),
    (b"1: 2\n", "unknown config key '1'"),
    (b"- a list\n", "must hold a mapping"),
    (b"steps: [unclosed\n", "is not valid YAML"),
])
def test_bad_config_files(tmp_path, capsys, monkeypatch, content, message):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "c.yaml"
    f.write_bytes(content)
    err = one_line_error(capsys, "train", "--config", f, "--dry-run")
    assert message in err
    assert not (tmp_path / "PWNED").exists()


def test_a_huge_config_file_is_refused_unread(tmp_path, capsys):
    f = tmp_path / "big.yaml"
    f.write_bytes(b"# " + b"x" * (2 << 20))
    assert "the limit is" in one_line_error(capsys, "train", "--config", f, "--dry-run")


# ------------------------------------------------------------------ arrays
def npy_bytes(a: np.ndarray, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def huge_header() -> bytes:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 1, 16, 16), }"
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()


@pytest.mark.parametrize("name, make, message", [
    ("objects", lambda t: npy_bytes(np.array([Payload()], dtype=object), allow_pickle=True),
     "holds object values"),
    ("strings", lambda t: npy_bytes(np.array(["a", "b"])), "holds <U1 values"),
    ("pickle", lambda t: pickle.dumps(Payload()), "is not a numeric .npy array"),
    ("empty", lambda t: b"", "is not a numeric .npy array"),
    ("truncated", lambda t: npy_bytes(np.zeros((4, 1, 8, 8), np.float32))[:200], "is not a numeric .npy array"),
    ("huge", lambda t: huge_header(), "declares"),
    ("nan", lambda t: npy_bytes(np.full((4, 1, 8, 8), np.nan, np.float32)), "256 NaN/Inf value(s)"),
    ("inf", lambda t: npy_bytes(np.array([[0.0, np.inf]], np.float32)), "1 NaN/Inf value(s)"),
    ("scalar", lambda t: npy_bytes(np.float32(1.0)), "has shape []"),
])
def test_bad_arrays_for_eval_images(tmp_path, capsys, name, make, message):
    Payload.target = str(tmp_path / "pwned")
    f = tmp_path / f"{name}.npy"
    f.write_bytes(make(tmp_path))
    err = one_line_error(capsys, "eval", "--images", f, "--metrics", "fd")
    assert message in err and f.name in err
    assert not (tmp_path / "pwned").exists()


def test_bad_labels_file_beside_the_images(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.rand(4, 1, 16, 16).astype(np.float32))
    np.save(tmp_path / "x.labels.npy", np.array([0.5, 1, 2, 3]))
    assert "holds float64 values" in one_line_error(capsys, "eval", "--images", tmp_path / "x.npy", "--metrics", "fd")


# ------------------------------------------------------------------ image folders
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 200_000) -> bytes:
    """A valid PNG header declaring side x side pixels (40 Gpx) over a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def good_png(tmp_path, name, value=128):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 12), value, np.uint8)).save(p)
    return p


def test_broken_files_in_a_folder_are_skipped_and_listed(tmp_path, capsys):
    root = tmp_path / "imgs"
    for i in range(3):
        good_png(root, f"ok{i}.png", 40 * i)
    (root / "zero.png").write_bytes(b"")
    (root / "text.jpg").write_text("not an image at all")
    full = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(full, "PNG")
    (root / "truncated.png").write_bytes(full.getvalue()[:60])
    (root / "bomb.png").write_bytes(bomb_png())
    Payload.target = str(tmp_path / "pwned")
    (root / "pickle.webp").write_bytes(pickle.dumps(Payload()))
    ds = load_dataset(f"folder:{root}", DataRequest(resolution=8))
    assert len(ds) == 3
    err = capsys.readouterr().err
    assert "skipped 5 unreadable image file(s)" in err
    for name in ("bomb.png", "pickle.webp", "text.jpg", "truncated.png", "zero.png"):
        assert name in err
    assert not (tmp_path / "pwned").exists()


def test_a_folder_of_only_broken_files_is_refused(tmp_path, capsys):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "bomb.png").write_bytes(bomb_png())
    (root / "a.png").write_bytes(b"\x00" * 10)
    err = one_line_error(capsys, "train", "--data", f"folder:{root}", "--steps", "1")
    assert "no readable image" in err and "of 2 image file(s); at least 1" in err


def test_pixel_and_file_limits_are_configurable(tmp_path, monkeypatch, capsys):
    root = tmp_path / "imgs"
    for i in range(4):
        good_png(root, f"{i}.png")
    monkeypatch.setenv("GANFORGE_MAX_FILES", "3")
    assert "more than 3 image files; set GANFORGE_MAX_FILES" in one_line_error(
        capsys, "train", "--data", f"folder:{root}", "--steps", "1")
    monkeypatch.setenv("GANFORGE_MAX_FILES", "lots")
    assert "GANFORGE_MAX_FILES='lots' is not allowed" in one_line_error(
        capsys, "train", "--data", f"folder:{root}", "--steps", "1")
    monkeypatch.delenv("GANFORGE_MAX_FILES")
    monkeypatch.setenv("GANFORGE_MAX_IMAGE_PIXELS", "100")  # 12 x 12 = 144 pixels each: all over the limit
    assert "no readable image" in one_line_error(capsys, "train", "--data", f"folder:{root}", "--steps", "1")


def test_unusual_images_are_read_the_documented_way_and_train(tmp_path, capsys):
    root = tmp_path / "dossier à images" / "deep" / "er" / "still deeper"  # spaces, unicode, nesting
    root.mkdir(parents=True)
    grey16 = np.full((10, 10), 65535 // 2, np.uint16)
    Image.fromarray(grey16).save(root / "sixteen.png")
    Image.new("P", (10, 10), 3).save(root / "palette.png")
    Image.new("CMYK", (10, 10), (0, 0, 0, 0)).save(root / "cmyk.jpg")
    Image.new("LA", (10, 10), (255, 0)).save(root / "grey_alpha.png")  # white, fully transparent
    Image.new("RGBA", (10, 10), (255, 0, 0, 255)).save(root / "rgba.png")
    frames = [Image.new("L", (10, 10), v) for v in (200, 10)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    tall = Image.new("L", (10, 20), 0)
    tall.paste(255, (0, 0, 10, 10))  # white top half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    tall.save(root / "rotated.jpg", exif=exif)
    ds = load_dataset(f"folder:{tmp_path / 'dossier à images'}", DataRequest(resolution=8))
    assert len(ds) == 7 and ds.x.shape[1:] == (3, 8, 8) and "skipped" not in capsys.readouterr().err
    by_name = dict(zip(sorted(p.name for p in root.iterdir()), ds.x))
    assert by_name["animated.gif"].mean() == pytest.approx(200 / 255, abs=0.02)  # first frame
    assert by_name["grey_alpha.png"].max() == 0  # alpha composited on black
    assert by_name["sixteen.png"].mean() == pytest.approx(0.5, abs=0.01)
    assert by_name["rgba.png"][0].mean() == pytest.approx(1) and by_name["rgba.png"][1].max() == 0
    assert by_name["cmyk.jpg"].mean() > 0.95  # CMYK (0, 0, 0, 0) is white
    # stored 10 wide x 20 tall, white on top; shown rotated 90 degrees clockwise: 20 x 10, white on the right.
    # The centre square is then half black (left) | half white (right); unrotated it would be white above black.
    rotated = by_name["rotated.jpg"][0]
    assert rotated.shape == (8, 8) and torch.equal(by_name["rotated.jpg"][1], rotated)
    assert rotated[:, :3].max() < 0.1 and rotated[:, 5:].min() > 0.9, rotated
    assert (rotated[:4].mean(0) - rotated[4:].mean(0)).abs().max() < 0.05, "top and bottom alike"
    code = main(["train", "--data", f"folder:{tmp_path / 'dossier à images'}", "--resolution", "8", "--steps", "2",
                 "--batch-size", "4", "--set", "net.width=8", "--out", str(tmp_path / "run ü")])
    assert code == 0 and (tmp_path / "run ü" / "samples" / "final.png").is_file()
