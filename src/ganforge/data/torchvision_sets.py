"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, converted to one tensor at once.

Files are looked for under ``req.root``, else ``$GANFORGE_DATA``, else
``~/.cache/ganforge/datasets``, in the layout torchvision expects. Missing files are
downloaded when the network allows; offline, a :class:`DataError` says which files to put
where (or to use ``folder:PATH``). Conversion reads the whole ``.data`` array: no
per-item PIL round trip.
"""
from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import DATASETS, DataRequest, Dataset
from .images import check_resolution, resize, set_channels

DEFAULT_ROOT = "~/.cache/ganforge/datasets"
DOWNLOAD_TIMEOUT_S = 15.0  # per socket operation: offline attempts fail fast, live downloads proceed


@dataclass(frozen=True)
class Source:
    """Where torchvision looks for one set's files, for the offline help message."""

    cls_name: str  # torchvision.datasets class
    files: tuple[str, ...]
    subdir: str  # relative to the root


def _mnist_like(cls_name: str) -> Source:
    files = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return Source(cls_name, files, f"{cls_name}/raw")


SOURCES = {
    "mnist": _mnist_like("MNIST"),
    "fashion-mnist": _mnist_like("FashionMNIST"),
    "cifar10": Source("CIFAR10", ("cifar-10-python.tar.gz",), "."),
}


def data_root(req: DataRequest) -> Path:
    return Path(req.root or os.environ.get("GANFORGE_DATA") or DEFAULT_ROOT).expanduser()


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """torchvision downloads with urllib and no timeout; bound every socket wait."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def missing_message(name: str, root: Path, err: BaseException) -> str:
    src = SOURCES[name]
    where = (root / src.subdir).resolve()
    if name == "cifar10":
        what = "cifar-10-python.tar.gz (or its extracted folder cifar-10-batches-py/)"
    else:
        what = ", ".join(src.files) + " (or the original .gz archives)"
    reason = (str(err).strip().splitlines() or [type(err).__name__])[-1][:120]
    return (
        f"{name} files are missing and could not be downloaded ({reason}); put {what} in {where} "
        f"(GANFORGE_DATA sets another root), or use folder:PATH for your own images"
    )


def open_split(name: str, root: Path, train: bool):
    """The torchvision dataset object for one split, downloading only when files are missing."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, SOURCES[name].cls_name)
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:
        pass  # "Dataset not found": try the download below
    except Exception as e:  # present but unreadable (truncated / wrong format)
        raise DataError(f"could not read the {name} files under {root}: {e}") from e
    try:
        with socket_timeout(DOWNLOAD_TIMEOUT_S):
            return cls(str(root), train=train, download=True)
    except Exception as e:  # offline, unwritable root, checksum mismatch, ...
        raise DataError(missing_message(name, root, e)) from e


def to_tensor(data) -> torch.Tensor:
    """torchvision ``.data`` (uint8 [N, H, W] tensor or [N, H, W, 3] array) -> [N, C, H, W] in [0, 1]."""
    x = torch.from_numpy(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # [N, C, H, W]
    return x.float().div_(255.0).contiguous()


def load_torchvision(name: str, req: DataRequest) -> Dataset:
    check_resolution(req.resolution)
    if req.split not in ("train", "test", "all"):
        raise DataError(f"unknown split {req.split!r}; allowed: train, test, all")
    root = data_root(req)
    flags = {"train": [True], "test": [False], "all": [True, False]}[req.split]
    xs, ys, classes = [], [], []
    for train in flags:
        ds = open_split(name, root, train)
        xs.append(set_channels(resize(to_tensor(ds.data), req.resolution), req.channels))  # [n, C, R, R]
        ys.append(torch.as_tensor(ds.targets, dtype=torch.long))
        classes = list(ds.classes)
    return Dataset(name, torch.cat(xs), torch.cat(ys), "image", classes, {"root": str(root)})


@DATASETS.register("mnist")
def mnist(req: DataRequest) -> Dataset:
    """MNIST handwritten digits, 28x28 grey, 10 classes (train 60,000, test 10,000)."""
    return load_torchvision("mnist", req)


@DATASETS.register("fashion-mnist")
def fashion_mnist(req: DataRequest) -> Dataset:
    """Fashion-MNIST clothing, 28x28 grey, 10 classes (train 60,000, test 10,000)."""
    return load_torchvision("fashion-mnist", req)


@DATASETS.register("cifar10")
def cifar10(req: DataRequest) -> Dataset:
    """CIFAR-10 photos, 32x32 RGB, 10 classes (train 50,000, test 10,000)."""
    return load_torchvision("cifar10", req)
