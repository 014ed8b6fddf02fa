"""Feature extractors: the spaces in which FD, KID and PRDC compare generated and real samples.

``FEATURES.create(name, ...)`` builds one; each is called as ``extractor(x) -> [N, dim]``
float32 on CPU, batched internally under ``no_grad``. ``describe`` is the sentence the
protocol card prints, so a number is never reported without the space it was measured in;
``fingerprint`` changes whenever the weights do, so cached reference statistics of an old
network are never reused.

* ``digits``: penultimate layer (128-d) of ganforge's shipped digits classifier.
* ``inception``: the standard FID Inception-v3 pool3 (2048-d), TF-ported weights, run through
  torch-fidelity. Weights are never downloaded: they are looked up locally (see
  :func:`find_inception_weights`).
* ``random-cnn``: a fixed-seed, never-trained conv net, the fallback for other image sets.
* ``identity``: the samples themselves (2-D points, vectors).
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import GanforgeError
from ..registry import Registry


class FeatureExtractor:
    """Base: subclasses set ``name``, ``dim``, ``describe``, ``fingerprint`` and implement ``_embed``."""

    name: str = ""
    dim: int | None = None  # None: same as the input (identity)
    describe: str = ""
    fingerprint: str = ""  # short hash of the weights; part of the reference-statistics cache key
    batch_size: int = 256
    kind: str = "image"  # "image" ([N, C, H, W] in [0, 1]) or "vector" ([N, D])
    resize: str = "none"  # how inputs are brought to the network's size, for the protocol card

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        if self.kind == "image" and (x.dim() != 4 or x.shape[1] not in (1, 3)):
            raise GanforgeError(f"feature extractor {self.name!r} expects images [N, 1|3, H, W], got {tuple(x.shape)}")
        bs = batch_size or self.batch_size
        out = [self._embed(x[i : i + bs]).float().cpu() for i in range(0, len(x), bs)]
        return torch.cat(out) if out else torch.empty(0, self.dim or 0)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} dim={self.dim}>"


FEATURES: Registry[FeatureExtractor] = Registry("feature extractor")


def _to_rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear, antialiased when shrinking: the same rule as the dataset loaders."""
    if x.shape[-2:] == (size, size):
        return x
    shrinking = x.shape[-1] > size or x.shape[-2] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)


def hash_tensors(tensors: dict[str, torch.Tensor]) -> str:
    """A short sha256 of named tensors: changes whenever any weight does."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------- digits


class DigitsFeatures(FeatureExtractor):
    name = "digits"
    batch_size = 1024
    resize = "grey (ITU-R 601 luma), bilinear to 16x16, antialiased when shrinking"

    def __init__(self) -> None:
        from .digits_classifier import FEATURE_DIM, load_digits_classifier

        self.model = load_digits_classifier()
        self.dim = FEATURE_DIM
        self.fingerprint = hash_tensors(self.model.state_dict())
        self.describe = (
            f"digits: penultimate layer ({FEATURE_DIM}-d, after global average pooling) of ganforge's digits CNN "
            "trained on the digits train split; input converted to grey and resized to 16x16 "
            "(bilinear, antialiased when shrinking)"
        )

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.cpu())[1]


@FEATURES.register("digits")
def digits(**_: Any) -> FeatureExtractor:
    """Penultimate layer (128-d) of ganforge's digits classifier."""
    return DigitsFeatures()


# --------------------------------------------------------------------------- random CNN

RANDOM_CNN_SEED = 0
RANDOM_CNN_SIZE = 32
RANDOM_CNN_CHANNELS = (32, 64, 128, 256)


class _RandomCNN(nn.Module):
    """3x3 stem then three stride-2 4x4 convs, LeakyReLU(0.2); 32 -> 4 px, global-avg-pooled."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        c = RANDOM_CNN_CHANNELS
        self.convs = nn.ModuleList([
            nn.Conv2d(3, c[0], 3, 1, 1), nn.Conv2d(c[0], c[1], 4, 2, 1),
            nn.Conv2d(c[1], c[2], 4, 2, 1), nn.Conv2d(c[2], c[3], 4, 2, 1),
        ])
        # Weights drawn from a private generator (He-normal, zero bias), never from the global
        # RNG, so the network is the same in every process whatever was seeded before.
        g = torch.Generator().manual_seed(seed)
        for conv in self.convs:
            fan_in = conv.weight[0].numel()
            conv.weight.data = torch.randn(conv.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5
            conv.bias.data.zero_()
        self.requires_grad_(False).eval()

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output, first to last (the perceptual distance compares them all)."""
        out = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)[-1].mean((2, 3))


class RandomCNNFeatures(FeatureExtractor):
    name = "random-cnn"
    batch_size = 256
    resize = f"grey replicated to RGB, bilinear to {RANDOM_CNN_SIZE}x{RANDOM_CNN_SIZE}, antialiased when shrinking"

    def __init__(self, seed: int = RANDOM_CNN_SEED) -> None:
        self.net = _RandomCNN(seed)
        self.dim = RANDOM_CNN_CHANNELS[-1]
        self.fingerprint = hash_tensors(self.net.state_dict())
        self.describe = (
            f"random-cnn: fixed-seed (seed {seed}) randomly initialised, never trained 4-layer conv net "
            f"(He-normal weights, LeakyReLU 0.2), input resized to {RANDOM_CNN_SIZE}x{RANDOM_CNN_SIZE} "
            f"(bilinear, antialiased when shrinking), grey replicated to RGB, {self.dim}-d global average pool. "
            "Limits: it measures low-level statistics (intensity, colour, edges, local texture), not semantic "
            "content; numbers are comparable only under the same extractor, resolution and reference set, never "
            "with Inception FID"
        )

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = _resize(_to_rgb(x.float().cpu()), RANDOM_CNN_SIZE)
        return self.net(x * 2 - 1)


@FEATURES.register("random-cnn")
def random_cnn(seed: int = RANDOM_CNN_SEED, **_: Any) -> FeatureExtractor:
    """Fixed-seed random conv net (256-d), a fallback for image sets without a trained judge."""
    return RandomCNNFeatures(seed)


# --------------------------------------------------------------------------- identity


class IdentityFeatures(FeatureExtractor):
    name = "identity"
    kind = "vector"
    batch_size = 1 << 20
    describe = "identity: the samples themselves, flattened to vectors (2-D points)"
    fingerprint = "identity"

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1)


@FEATURES.register("identity")
def identity(**_: Any) -> FeatureExtractor:
    """The samples themselves (2-D points, vectors)."""
    return IdentityFeatures()


# --------------------------------------------------------------------------- inception

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
INCEPTION_ENV = "GANFORGE_INCEPTION_WEIGHTS"


def inception_cache_dir() -> Path:
    """Where torch-fidelity / torchmetrics keep the file: ``<torch hub dir>/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """The FID Inception weights file: ``path``, else $GANFORGE_INCEPTION_WEIGHTS, else the hub cache.

    Never downloads. Without the file it raises one line naming the file and where to put it.
    """
    explicit = path if path is not None else os.environ.get(INCEPTION_ENV) or None
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise GanforgeError(f"inception weights not found at {p}; expected the file {INCEPTION_FILE}")
        return p
    cached = inception_cache_dir() / INCEPTION_FILE
    if cached.is_file():
        return cached
    raise GanforgeError(
        f"FID Inception weights not available offline: put {INCEPTION_FILE} ({INCEPTION_URL}) in "
        f"{inception_cache_dir()}/ or pass --inception-weights PATH (or set {INCEPTION_ENV}=PATH)"
    )


def _build_inception(weights: Path) -> nn.Module:
    """torch-fidelity's FeatureExtractorInceptionV3 with a state dict loaded as plain tensors.

    torch-fidelity's own loader unpickles with ``weights_only=False`` (or downloads when given
    no path), so the state dict is read here with ``weights_only=True`` and handed to its
    constructor through the one hook it has, ``load_state_dict_from_url``: no arbitrary
    unpickling and no network access can happen.
    """
    from unittest import mock

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or a pickle with more than tensors in it
        raise GanforgeError(
            f"cannot read inception weights {weights} with torch.load(weights_only=True) ({type(e).__name__}); "
            f"expected the plain state dict {INCEPTION_FILE}") from None
    try:
        import torch_fidelity.feature_extractor_inceptionv3 as tfi
    except ImportError:
        raise GanforgeError("the inception extractor (fid, is) needs torch-fidelity: pip install torch-fidelity") \
            from None
    with mock.patch.object(tfi, "load_state_dict_from_url", lambda *a, **k: state):
        try:
            net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
        except (RuntimeError, TypeError, AttributeError):  # wrong keys / shapes / not a dict
            raise GanforgeError(
                f"{weights} is not the FID Inception state dict {INCEPTION_FILE} (its keys or shapes do not match)"
            ) from None
    return net.eval()


@functools.lru_cache(maxsize=2)
def _cached_inception(weights: str) -> nn.Module:
    return _build_inception(Path(weights))


class InceptionFeatures(FeatureExtractor):
    """FID Inception-v3: pool3 features (2048-d) and, for the Inception Score, 1008 logits."""

    name = "inception"
    dim = 2048
    batch_size = 50
    resize = "rounded to 8-bit, grey replicated to RGB, TF1-compatible bilinear to 299x299 (torch-fidelity)"

    def __init__(self, inception_weights: str | os.PathLike | None = None, device: str | None = None) -> None:
        path = find_inception_weights(inception_weights)
        self.weights = path
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net = _cached_inception(str(path.resolve())).to(self.device)
        st = path.stat()
        self.fingerprint = hashlib.sha256(f"{path.name}:{st.st_size}".encode()).hexdigest()[:12]
        self.describe = (
            f"inception: FID Inception-v3 pool3 (2048-d), TF-ported weights {path.name}, via torch-fidelity; "
            "images rounded to 8-bit, grey replicated to RGB, resized to 299x299 with TF1-compatible bilinear"
        )

    @staticmethod
    def _to_uint8(x: torch.Tensor) -> torch.Tensor:
        # What saving to PNG does (torchvision.utils.save_image): scale, round, clamp.
        return _to_rgb(x).float().mul(255).add(0.5).clamp(0, 255).to(torch.uint8)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._to_uint8(x).to(self.device))[0]

    @torch.no_grad()
    def features_and_logits(self, x: torch.Tensor, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool3 features and the bias-free logits torch-fidelity's Inception Score uses, in one pass."""
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise GanforgeError(f"feature extractor 'inception' expects images [N, 1|3, H, W], got {tuple(x.shape)}")
        bs = batch_size or self.batch_size
        feats, logits = [], []
        for i in range(0, len(x), bs):
            f, lo = self.net(self._to_uint8(x[i : i + bs]).to(self.device))
            feats.append(f.float().cpu())
            logits.append(lo.float().cpu())
        if not feats:
            return torch.empty(0, 2048), torch.empty(0, 1008)
        return torch.cat(feats), torch.cat(logits)


@FEATURES.register("inception")
def inception(
    inception_weights: str | os.PathLike | None = None, device: str | None = None, **_: Any
) -> FeatureExtractor:
    """Standard FID Inception-v3 pool3 (2048-d); needs the weights file locally (never downloaded)."""
    return InceptionFeatures(inception_weights, device)


def create_extractor(name: str, inception_weights: str | os.PathLike | None = None) -> FeatureExtractor:
    """``FEATURES.create`` with the options every caller may pass (unknown name -> ConfigError)."""
    return FEATURES.create(name, inception_weights=inception_weights)
