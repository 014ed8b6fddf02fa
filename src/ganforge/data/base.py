"""In-memory datasets and the deterministic, resumable batch sampler.

Every dataset ganforge trains on is small enough to live in memory as one tensor, so a
batch is an index into that tensor: no per-item Python pipeline, no worker processes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from ..errors import ConfigError
from ..registry import Registry


@dataclass
class Dataset:
    """A whole dataset in memory, in *data space*.

    ``x``: images ``[N, C, H, W]`` float32 in [0, 1], clips ``[N, T, C, H, W]`` in [0, 1] (kind ``video``), or
    points ``[N, D]`` float32.
    ``y``: int64 class labels ``[N]`` or ``None``.
    ``x_b``: for image-to-image translation, the second domain's images ``[M, C', H, W]``: the
    partners of ``x`` when ``paired`` (then M = N), else an unaligned set; ``y_b`` its labels (for
    evaluation only: translation never trains on labels).
    ``captions``: for text-to-image, one or more captions per image (``info["vocab"]`` may list
    words beyond them, such as every word a caption grammar can write).
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor | None = None
    kind: Literal["image", "points", "video"] = "image"
    class_names: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # dataset-specific facts (e.g. mixture modes)
    x_b: torch.Tensor | None = None
    y_b: torch.Tensor | None = None
    paired: bool = False
    captions: list[list[str]] | None = None

    def __post_init__(self) -> None:
        if self.captions is not None and len(self.captions) != len(self.x):
            raise ValueError("captions and images differ in length")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError("labels and samples differ in length")
        if self.paired and (self.x_b is None or len(self.x_b) != len(self.x)):
            raise ValueError("paired data needs one partner per sample")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` or ``(D,)``."""
        return tuple(self.x.shape[1:])

    @property
    def translation(self) -> bool:
        """Two image domains (paired or not) rather than one distribution to sample."""
        return self.x_b is not None

    def spec(self) -> DataSpec:
        shape_b = tuple(self.x_b.shape[1:]) if self.x_b is not None else None
        vocab, prompts = [], []
        if self.captions is not None:
            from ..text import words

            vocab = sorted({w for cs in self.captions for c in cs for w in words(c)} | set(self.info.get("vocab", [])))
            prompts = [cs[0] for cs in self.captions[:PROMPTS]]
        return DataSpec(self.name, self.kind, self.shape, list(self.class_names), shape_b, self.paired,
                        bool(self.info.get("patches")), vocab, prompts, list(self.info.get("class_prior", [])),
                        bool(self.info.get("clustered")))

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Data space -> the space networks see (images to [-1, 1], points unchanged)."""
        return x if self.kind == "points" else x * 2 - 1

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_model`; images are clamped to [0, 1]."""
        return self.spec().from_model(x)

    def split(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Deterministic split (stratified when labelled) into (fraction, rest)."""
        first, rest = split_indices(len(self), fraction, self.y, seed)
        return self.subset(first), self.subset(rest)

    def subset(self, index: torch.Tensor) -> Dataset:
        """The samples at ``index`` (with their partners when paired; an unpaired domain B stays whole)."""
        pick = (lambda t: None if t is None else t[index]) if self.paired else (lambda t: t)
        captions = None if self.captions is None else [self.captions[i] for i in index.tolist()]
        return Dataset(
            self.name, self.x[index], None if self.y is None else self.y[index],
            self.kind, list(self.class_names), dict(self.info), pick(self.x_b), pick(self.y_b), self.paired, captions,
        )


PROMPTS = 64  # example captions a captioned data spec keeps (random prompts; the first 8 make training grids)


@dataclass
class DataSpec:
    """What a model needs to know about its data; saved in the run directory, so a trained
    generator can be loaded without the dataset."""

    name: str
    kind: Literal["image", "points", "video"]
    shape: tuple[int, ...]
    class_names: list[str] = field(default_factory=list)
    shape_b: tuple[int, ...] | None = None  # translation data: one image of domain B (x is domain A)
    paired: bool = False
    patches: bool = False  # trained on crops of larger photos: translate big images in tiles at their scale
    vocab: list[str] = field(default_factory=list)  # captioned data: the words prompts may use
    prompts: list[str] = field(default_factory=list)  # captioned data: example captions (training grids, demo)
    class_prior: list[float] = field(default_factory=list)  # draw classes in these proportions ([]: uniformly)
    clustered: bool = False  # the classes are clusters a recipe found in unlabelled data, not labels

    @property
    def captioned(self) -> bool:
        return bool(self.vocab)

    @property
    def translation(self) -> bool:
        return self.shape_b is not None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.kind == "points" else ((x + 1) / 2).clamp(0, 1)


@dataclass
class DataRequest:
    """What the user asked for; builders read the fields that apply to them."""

    resolution: int = 16
    channels: int | None = None  # None: the source's natural channel count
    root: str | None = None  # download / cache directory for torchvision sets
    split: str = "train"  # "train", "test" or "all"
    seed: int = 0


def split_indices(
    n: int, fraction: float, labels: torch.Tensor | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted indices of a random ``ceil(n * fraction)`` of ``n`` items and of the rest.

    With ``labels`` the split is stratified: each class gives ``floor(n_c * fraction)`` and the
    leftover places go to the classes with the largest remainders (scikit-learn's rule).
    """
    g = torch.Generator().manual_seed(seed)
    groups = [torch.arange(n)] if labels is None else [
        torch.nonzero(labels == c).flatten() for c in torch.unique(labels)
    ]
    exact = [len(idx) * fraction for idx in groups]
    take = [math.floor(e) for e in exact]
    leftover = math.ceil(n * fraction - 1e-9) - sum(take)
    for i in sorted(range(len(groups)), key=lambda i: exact[i] - take[i], reverse=True)[:leftover]:
        take[i] += 1
    first, rest = [], []
    for idx, k in zip(groups, take):
        idx = idx[torch.randperm(len(idx), generator=g)]
        first.append(idx[:k])
        rest.append(idx[k:])
    return torch.cat(first).sort().values, torch.cat(rest).sort().values


DATASETS: Registry[Dataset] = Registry("dataset")


def dataset_builder(spec: str):
    """The registry entry a data spec names; one line naming the fix for an unknown one (a path given without
    ``folder:``, a misspelt name)."""
    name = spec.partition(":")[0]
    if name not in DATASETS and ("/" in spec or Path(spec).expanduser().exists()):
        raise ConfigError(f"unknown dataset {spec!r}: a folder of images is --data folder:{spec} (first-level "
                          "subfolders are classes)")
    return DATASETS.get(name)


def load_dataset(spec: str, request: DataRequest | None = None) -> Dataset:
    """Build a dataset from a spec such as ``digits``, ``ring:8:1:0.01`` or ``folder:PATH``.

    The part before the first ``:`` names the registry entry; the rest is passed as the
    builder's ``arg`` string.
    """
    request = request or DataRequest()
    name, _, arg = spec.partition(":")
    builder = dataset_builder(spec)
    data = builder(request, arg) if arg else builder(request)
    data.info.setdefault("split", request.split)
    data.info.setdefault("resolution", request.resolution)
    return data


def load_training_set(spec: str, request: DataRequest, fraction: float = 1.0, seed: int = 0,
                      held_out: bool = True) -> tuple[Dataset, Dataset | None]:
    """What a run trains on and (with ``held_out``) real images it never sees, or None when there are none.

    The training set is the ``train`` split, or a stratified random ``fraction`` of it (the rest
    is then held out); otherwise the ``test`` split is held out, except for ``folder:`` and ``captions:`` data,
    whose test split is part of its training set.
    """
    data = load_dataset(spec, DataRequest(request.resolution, request.channels, request.root, "train",
                                          request.seed))
    if fraction < 1:
        train, rest = data.split(fraction, seed=seed)
        return train, rest if held_out else None
    if not held_out or data.name.startswith(("folder:", "captions:")):
        return data, None
    return data, load_dataset(spec, DataRequest(request.resolution, request.channels, request.root, "test",
                                                request.seed))


class InfiniteSampler:
    """Endless shuffled batches of a dataset with an exactly resumable state.

    Each epoch is a fresh permutation drawn from a private generator; the state is the
    generator state, the permutation and the position in it.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.gen)
        self.pos = 0

    def next(self) -> torch.Tensor:
        out = []
        need = self.batch_size
        while need > 0:
            if self.pos >= self.n:
                self.perm = torch.randperm(self.n, generator=self.gen)
                self.pos = 0
            take = self.perm[self.pos : self.pos + need]
            self.pos += len(take)
            need -= len(take)
            out.append(take)
        return torch.cat(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": torch.tensor(self.pos)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.gen.set_state(state["gen"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])
