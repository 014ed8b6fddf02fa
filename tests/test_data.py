"""Datasets: toy mixtures, bundled image sets, the folder loader, torchvision sets, sampling."""
from __future__ import annotations

import math
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import console
from ganforge.data import DataRequest, InfiniteSampler, load_dataset
from ganforge.errors import DataError

# ---------------------------------------------------------------- toy 2D mixtures


def nearest_mode_residual(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Per-sample offset from the nearest mixture mean, [N, 2]."""
    nearest = torch.cdist(x, means).argmin(1)
    return x - means[nearest]


def test_ring8_modes_and_std():
    ds = load_dataset("ring8")
    assert ds.kind == "points" and ds.x.shape == (100_000, 2) and ds.y is None
    means = ds.info["means"]
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    expected = torch.stack([angles.cos(), angles.sin()], 1).float()
    assert torch.allclose(means, expected, atol=1e-6)
    assert torch.allclose(means.norm(dim=1), torch.ones(8), atol=1e-6)
    assert abs(nearest_mode_residual(ds.x, means).std().item() - 0.01) < 0.001


def test_grid25_means():
    ds = load_dataset("grid25")
    got = {tuple(round(v) for v in m.tolist()) for m in ds.info["means"]}
    assert got == {(a, b) for a in range(-4, 5, 2) for b in range(-4, 5, 2)}
    assert abs(nearest_mode_residual(ds.x, ds.info["means"]).std().item() - 0.05) < 0.005


def test_parametric_mixtures():
    ring = load_dataset("ring:5:2:0.1")
    assert ring.info["means"].shape == (5, 2)
    assert torch.allclose(ring.info["means"].norm(dim=1), torch.full((5,), 2.0), atol=1e-5)
    assert ring.info["std"] == pytest.approx(0.1)
    grid = load_dataset("grid:9:1:0.1")
    got = {tuple(round(v) for v in m.tolist()) for m in grid.info["means"]}
    assert got == {(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)}


@pytest.mark.parametrize("spec", ["grid:10:1:0.1", "ring:x", "ring:5:2", "ring:0:1:0.1", "grid:9:1:-1"])
def test_bad_mixture_spec(spec):
    with pytest.raises(DataError):
        load_dataset(spec)


def test_toy_seed_is_deterministic():
    a = load_dataset("ring8", DataRequest(seed=3))
    b = load_dataset("ring8", DataRequest(seed=3))
    assert torch.equal(a.x, b.x)


# ---------------------------------------------------------------- bundled image sets


DIGITS_SPLIT_HINT = (
    "digits test split should hold ceil(0.2 * 1797) = 360 images, as scikit-learn's train_test_split; "
    "split_indices rounding each class separately gives 359"
)


@pytest.mark.parametrize("split,n", [("train", 1437), ("test", 360), ("all", 1797)])
def test_digits_splits(split, n):
    ds = load_dataset("digits", DataRequest(split=split))
    assert len(ds) == n, DIGITS_SPLIT_HINT
    assert ds.x.shape == (n, 1, 16, 16) and ds.x.dtype == torch.float32
    assert ds.y is not None and set(ds.y.tolist()) == set(range(10))
    assert 0 <= ds.x.min() and ds.x.max() <= 1
    assert ds.num_classes == 10


def test_digits_resolution_and_channels():
    ds = load_dataset("digits", DataRequest(resolution=32, channels=3, split="test"))
    assert ds.x.shape == (360, 3, 32, 32), DIGITS_SPLIT_HINT
    assert torch.equal(ds.x[:, 0], ds.x[:, 1])
    assert 0 <= ds.x.min() and ds.x.max() <= 1


def test_stacked_digits_channels_are_labelled_digits():
    digits = load_dataset("digits", DataRequest(split="train", resolution=8))
    ds = load_dataset("stacked-digits", DataRequest(split="train", resolution=8))
    assert ds.x.shape == (25_600, 3, 8, 8) and ds.num_classes == 1000 and ds.class_names[42] == "042"
    lookup = {tuple(r.flatten().tolist()): int(c) for r, c in zip(digits.x, digits.y, strict=True)}
    for img, label in zip(ds.x[:50], ds.y[:50], strict=True):  # each channel is a training digit of its label
        a, b, c = (lookup[tuple(img[ch].flatten().tolist())] for ch in range(3))
        assert int(label) == 100 * a + 10 * b + c
    assert len(torch.unique(ds.y)) > 990  # 25,600 draws cover nearly all 1,000 triples
    assert torch.equal(ds.x, load_dataset("stacked-digits", DataRequest(split="train", resolution=8, seed=7)).x)
    with pytest.raises(DataError, match="stacked-digits is RGB"):
        load_dataset("stacked-digits", DataRequest(resolution=8, channels=1))


def test_digits_splits_are_disjoint():
    train = load_dataset("digits", DataRequest(split="train", resolution=8))
    test = load_dataset("digits", DataRequest(split="test", resolution=8))
    rows = {tuple(r.flatten().tolist()) + (int(c),) for r, c in zip(train.x, train.y, strict=True)}
    overlap = sum(tuple(r.flatten().tolist()) + (int(c),) in rows for r, c in zip(test.x, test.y, strict=True))
    assert overlap < 5  # scikit-learn digits hold a few exact duplicates; a leak would be hundreds


@pytest.mark.parametrize("split,n", [("train", 80), ("test", 20), ("all", 100)])
def test_faces100(split, n):
    ds = load_dataset("faces100", DataRequest(split=split, resolution=32))
    assert ds.x.shape == (n, 1, 32, 32) and ds.y is None
    assert 0 <= ds.x.min() and ds.x.max() <= 1 and ds.x.std() > 0.05


def test_faces100_are_the_faces_not_the_backgrounds():
    from skimage.data import lfw_subset

    raw = torch.from_numpy(np.asarray(lfw_subset(), dtype=np.float32))  # [200, 25, 25]
    ds = load_dataset("faces100", DataRequest(split="all", resolution=25))
    assert torch.allclose(ds.x[:, 0], raw[:100], atol=1e-6)


# ---------------------------------------------------------------- folder:PATH


def save(img: Image.Image, path: Path, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)


def colour_image(w: int = 20, h: int = 12) -> Image.Image:
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0], a[..., 1], a[..., 2] = 200, 40, 90
    return Image.fromarray(a, "RGB")


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    """Three classes of every supported format, a nested folder, a corrupt file and a text file."""
    root = tmp_path / "imgs"
    save(Image.new("L", (10, 20), 128), root / "cats" / "grey.png")
    save(colour_image(), root / "cats" / "rgb.jpg", quality=95)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, :4, 3] = 255  # left half opaque white, right half transparent white
    save(Image.fromarray(rgba, "RGBA"), root / "dogs" / "rgba.png")
    save(colour_image().convert("P", palette=Image.Palette.ADAPTIVE), root / "dogs" / "palette.png")
    save(Image.fromarray(np.full((6, 6), 65535, np.uint16)), root / "dogs" / "deep" / "deeper" / "sixteen.png")
    save(colour_image(), root / "birds" / "a.webp", lossless=True)
    save(colour_image(), root / "birds" / "b.BMP")
    (root / "birds" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "birds" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def warnings_seen(monkeypatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(console, "warn", seen.append)
    return seen


def load_folder(root: Path, **kw) -> object:
    return load_dataset(f"folder:{root}", DataRequest(**kw))


def test_folder_formats_classes_and_warning(odd_folder, warnings_seen):
    ds = load_folder(odd_folder, resolution=8, split="all")
    assert ds.x.shape == (7, 3, 8, 8) and ds.x.dtype == torch.float32
    assert 0 <= ds.x.min() and ds.x.max() <= 1
    assert ds.class_names == ["birds", "cats", "dogs"]
    assert ds.y.tolist() == [0, 0, 1, 1, 2, 2, 2]  # files sorted by path; deep/ counts as dogs
    assert len(warnings_seen) == 1 and "broken.png" in warnings_seen[0] and "1 unreadable" in warnings_seen[0]
    assert ds.info["skipped"] == 1


def test_folder_pixel_values(odd_folder, warnings_seen):
    ds = load_folder(odd_folder, resolution=8, split="all")
    names = ["a.webp", "b.BMP", "grey.png", "rgb.jpg", "dogs/deep/sixteen.png", "palette.png", "rgba.png"]
    by_name = dict(zip(names, ds.x, strict=True))  # files in sorted path order; broken.png skipped
    assert torch.allclose(by_name["a.webp"][:, 4, 4], torch.tensor([200, 40, 90]) / 255, atol=1e-6)
    assert torch.allclose(by_name["b.BMP"][:, 4, 4], torch.tensor([200, 40, 90]) / 255, atol=1e-6)
    assert torch.allclose(by_name["grey.png"], torch.full((3, 8, 8), 128 / 255), atol=1e-6)
    assert torch.allclose(by_name["rgb.jpg"][:, 4, 4], torch.tensor([200, 40, 90]) / 255, atol=0.03)
    assert torch.allclose(by_name["palette.png"][:, 4, 4], torch.tensor([200, 40, 90]) / 255, atol=0.02)
    assert torch.allclose(by_name["dogs/deep/sixteen.png"], torch.ones(3, 8, 8))  # 65535 -> 1.0, not clipped 255
    rgba = by_name["rgba.png"]  # composited on black: opaque white left, transparent -> 0 right
    assert torch.allclose(rgba[:, :, :4], torch.ones(3, 8, 4)) and torch.allclose(rgba[:, :, 4:], torch.zeros(3, 8, 4))


def test_folder_sixteen_bit_scaling_and_grey_channels(tmp_path):
    save(Image.fromarray(np.full((5, 5), 65535, np.uint16)), tmp_path / "a.png")
    save(Image.fromarray(np.full((5, 5), 32768, np.uint16)), tmp_path / "b.png")
    save(Image.new("LA", (5, 5), (255, 128)), tmp_path / "c.png")
    ds = load_folder(tmp_path, resolution=4)
    assert ds.x.shape == (3, 1, 4, 4)  # grey only: one channel
    assert ds.y is None and ds.class_names == []  # images in the root: unlabelled
    assert torch.allclose(ds.x[0], torch.ones(1, 4, 4))
    assert torch.allclose(ds.x[1], torch.full((1, 4, 4), 32768 / 65535), atol=1e-6)
    assert torch.allclose(ds.x[2], torch.full((1, 4, 4), 128 / 255), atol=1e-6)


def test_folder_center_crop(tmp_path):
    a = np.zeros((4, 12), np.uint8)
    a[:, 4:8] = 255  # white centre square between black side bands
    save(Image.fromarray(a, "L"), tmp_path / "wide.png")
    ds = load_folder(tmp_path, resolution=4)
    assert torch.allclose(ds.x, torch.ones(1, 1, 4, 4))


def test_folder_big_image_and_cmyk(tmp_path):
    a = np.zeros((210, 300, 3), np.uint8)
    a[:, :150] = (255, 0, 0)  # left half red, right half blue
    a[:, 150:] = (0, 0, 255)
    save(Image.fromarray(a, "RGB"), tmp_path / "a_big.png")  # box-shrunk by 13 before the resize
    save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "b_cmyk.jpg", quality=100)
    ds = load_folder(tmp_path, resolution=8)
    assert ds.x.shape == (2, 3, 8, 8)
    big, cmyk = ds.x
    assert torch.allclose(big[:, :, :3], torch.tensor([1.0, 0, 0]).view(3, 1, 1).expand(3, 8, 3), atol=1e-5)
    assert torch.allclose(big[:, :, 5:], torch.tensor([0, 0, 1.0]).view(3, 1, 1).expand(3, 8, 3), atol=1e-5)
    assert cmyk[0].mean() > 0.9 and cmyk[1:].mean() < 0.1  # CMYK magenta + yellow = red


def test_folder_root_images_make_it_unlabelled(tmp_path):
    save(Image.new("L", (4, 4), 0), tmp_path / "cls" / "a.png")
    save(Image.new("L", (4, 4), 0), tmp_path / "root.png")
    ds = load_folder(tmp_path, resolution=4)
    assert len(ds) == 2 and ds.y is None


def test_folder_channels_and_splits(odd_folder, warnings_seen):
    ds = load_folder(odd_folder, resolution=16, channels=1)
    assert ds.x.shape == (7, 1, 16, 16)  # "train" is every image of a user folder
    test = load_folder(odd_folder, resolution=16, split="test")
    assert 1 <= len(test) < 7 and test.y is not None
    with pytest.raises(DataError):
        load_folder(odd_folder, split="val")
    with pytest.raises(DataError):
        load_folder(odd_folder, channels=4)


def test_folder_tilde_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    save(Image.new("RGB", (4, 4), (255, 0, 0)), tmp_path / "pics" / "x.png")
    ds = load_dataset("folder:~/pics", DataRequest(resolution=4))
    assert ds.x.shape == (1, 3, 4, 4)


def test_folder_errors(tmp_path, warnings_seen):
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "file.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    (empty / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match=f"no readable image.*{empty.name}"):
        load_folder(empty)
    with pytest.raises(DataError, match="folder:PATH"):
        load_dataset("folder")


def test_folder_warning_lists_a_few_names(tmp_path, warnings_seen):
    save(Image.new("L", (4, 4)), tmp_path / "ok.png")
    for i in range(6):
        (tmp_path / f"bad{i}.png").write_bytes(b"junk")
    load_folder(tmp_path, resolution=4)
    assert len(warnings_seen) == 1
    assert "6 unreadable" in warnings_seen[0] and "bad0.png" in warnings_seen[0] and "and 1 more" in warnings_seen[0]


# ---------------------------------------------------------------- torchvision sets


def write_idx(path: Path, array: np.ndarray) -> None:
    """An MNIST idx file: magic (0, 0, uint8 type, ndim), big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_mnist(root: Path, folder: str, n_train: int = 20, n_test: int = 10) -> None:
    raw = root / folder / "raw"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0] = 255  # a known all-white first image
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


@pytest.fixture
def no_download(monkeypatch):
    """Make every torchvision download fail at once instead of touching the network."""
    import torchvision.datasets as tvd

    def offline(self):
        raise RuntimeError("Error downloading:\n<urlopen error offline in tests>")

    for cls in (tvd.MNIST, tvd.FashionMNIST, tvd.CIFAR10):
        monkeypatch.setattr(cls, "download", offline)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_like_loads_offline(tmp_path, no_download, name, folder):
    fake_mnist(tmp_path, folder)
    train = load_dataset(name, DataRequest(root=str(tmp_path), resolution=16))
    assert train.x.shape == (20, 1, 16, 16) and train.x.dtype == torch.float32
    assert 0 <= train.x.min() and train.x.max() <= 1
    assert torch.allclose(train.x[0], torch.ones(1, 16, 16))
    assert train.y.tolist() == [i % 10 for i in range(20)] and train.num_classes == 10
    test = load_dataset(name, DataRequest(root=str(tmp_path), split="test", resolution=28, channels=3))
    assert test.x.shape == (10, 3, 28, 28)
    both = load_dataset(name, DataRequest(root=str(tmp_path), split="all"))
    assert len(both) == 30 and both.y.tolist()[20:] == list(range(10))


def test_torchvision_root_from_env(tmp_path, monkeypatch, no_download):
    fake_mnist(tmp_path, "MNIST")
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))
    assert len(load_dataset("mnist", DataRequest(split="test"))) == 10


@pytest.mark.parametrize("name,where,needs", [
    ("mnist", "MNIST/raw", "train-images-idx3-ubyte"),
    ("fashion-mnist", "FashionMNIST/raw", "t10k-labels-idx1-ubyte"),
    ("cifar10", "", "cifar-10-python.tar.gz"),
])
def test_torchvision_missing_files_message(tmp_path, no_download, name, where, needs):
    before = socket.getdefaulttimeout()
    with pytest.raises(DataError) as info:
        load_dataset(name, DataRequest(root=str(tmp_path)))
    msg = str(info.value)
    assert "\n" not in msg and needs in msg and "folder:PATH" in msg
    assert str((tmp_path / where).resolve()) in msg
    assert socket.getdefaulttimeout() == before  # the download timeout is restored


def test_torchvision_corrupt_files(tmp_path, no_download):
    fake_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match="could not read"):
        load_dataset("mnist", DataRequest(root=str(tmp_path)))


# ---------------------------------------------------------------- sampling and splitting


def test_infinite_sampler_resumes_identically():
    a = InfiniteSampler(n=10, batch_size=4, seed=1)
    first = [a.next() for _ in range(7)]  # crosses several epoch boundaries
    assert all(len(b) == 4 for b in first)
    assert sorted(torch.cat(first[:2] + [first[2][:2]]).tolist()) == list(range(10))  # one epoch = a permutation
    state = a.state_dict()
    expected = [a.next() for _ in range(9)]
    b = InfiniteSampler(n=10, batch_size=4, seed=999)
    b.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(expected, [b.next() for _ in range(9)], strict=True))


def test_dataset_split_stratified_and_deterministic():
    ds = load_dataset("digits", DataRequest(split="all", resolution=8))
    part, rest = ds.split(0.25, seed=5)
    assert len(part) + len(rest) == len(ds)
    counts_all = torch.bincount(ds.y, minlength=10)
    counts_part = torch.bincount(part.y, minlength=10)
    assert torch.all((counts_part - counts_all * 0.25).abs() <= 1)  # every class in proportion
    again, _ = ds.split(0.25, seed=5)
    assert torch.equal(part.x, again.x) and torch.equal(part.y, again.y)
    other, _ = ds.split(0.25, seed=6)
    assert not torch.equal(part.x, other.x)
    assert part.class_names == ds.class_names
