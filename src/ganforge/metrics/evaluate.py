"""``evaluate_samples``: every metric of the suite, computed for one set of generated samples.

Each metric in ``METRICS`` is a function of an :class:`EvalContext`, which computes what the
metrics share (generated features, cached reference statistics, classifier outputs) at most
once. The result is a flat dict of numbers plus a ``protocol`` dict that says exactly how
they were measured: extractor, sample counts, reference set, resizing, seed, version.
Numbers measured under different protocols are not comparable.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ConfigError, GanforgeError
from ..registry import Registry
from .classes import class_metrics
from .features import FEATURES, FeatureExtractor, InceptionFeatures, create_extractor
from .frechet import feature_statistics, frechet_distance, frechet_distance_from_stats
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .memorization import memorization
from .modes import mode_metrics
from .prdc import prdc
from .refstats import ReferenceStats, reference_stats

if TYPE_CHECKING:
    from ..data.base import Dataset

MAX_REAL = 10_000  # reference samples used at most (a fixed subset beyond that): keeps PRDC's kNN tractable
PRDC_K = 5
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
IS_SPLITS = 10
REFERENCE_SUBSET_SEED = 0  # the reference subset never depends on the evaluation seed

# Datasets with a trained classifier for the ``classes`` metric (ganforge ships the digits one).
CLASSIFIER_DATASETS = ("digits",)


def default_features(real: Dataset) -> str:
    """``digits`` for the 10-class digits set, ``identity`` for points, ``random-cnn`` otherwise."""
    if real.kind == "points":
        return "identity"
    if real.name == "digits" and real.num_classes == 10 and real.x.dim() == 4 and real.x.shape[1] in (1, 3):
        return "digits"
    return "random-cnn"


# Metric keys where larger is better (the rest: smaller is better), for "best" checkpoints.
HIGHER_IS_BETTER = {"precision", "recall", "density", "coverage", "class_confident", "classes_present",
                    "label_agreement", "modes", "hq_frac", "is_mean", "psnr", "ssim", "labels_kept_ab",
                    "labels_kept_ba"}


def default_metrics(data: Dataset) -> list[str]:
    """What ``ganforge eval`` measures when not told: fd, kid, prdc (and classes on digits); modes for mixtures."""
    if data.kind == "points":
        return ["modes", "fd"] if "means" in data.info else ["fd", "prdc"]
    return ["fd", "kid", "prdc"] + (["classes"] if data.name in CLASSIFIER_DATASETS else [])


def is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None or (isinstance(best, float) and math.isnan(best)):
        return not math.isnan(value)
    return value > best if metric in HIGHER_IS_BETTER else value < best


def _version() -> str:
    from ..version import __version__

    return __version__


@dataclass
class EvalContext:
    """Inputs of one evaluation and the lazily computed things metrics share."""

    fake: torch.Tensor
    real: Dataset
    features: str
    seed: int = 0
    requested_labels: torch.Tensor | None = None
    cache_dir: str | os.PathLike | None = None
    inception_weights: str | os.PathLike | None = None
    split: str = "unspecified"
    max_real: int = MAX_REAL
    train_set: Dataset | None = None  # what the generator was trained on (default: ``real``), for memorization
    held_out: Dataset | None = None  # real images it never saw, for memorization
    _memo: dict[str, Any] = field(default_factory=dict)

    def _once(self, name: str, fn: Callable[[], Any]) -> Any:
        if name not in self._memo:
            self._memo[name] = fn()
        return self._memo[name]

    @property
    def resolution(self) -> int | None:
        return int(self.real.x.shape[-1]) if self.real.kind == "image" else None

    def real_samples(self) -> torch.Tensor:
        """The reference samples: all of them, or a fixed random ``max_real`` of them."""
        def pick() -> torch.Tensor:
            x = self.real.x
            if len(x) <= self.max_real:
                return x
            g = torch.Generator().manual_seed(REFERENCE_SUBSET_SEED)
            return x[torch.randperm(len(x), generator=g)[: self.max_real].sort().values]
        return self._once("real_samples", pick)

    def extractor(self) -> FeatureExtractor:
        return self._once("extractor", lambda: create_extractor(self.features, self.inception_weights))

    def fake_features(self) -> torch.Tensor:
        def run() -> torch.Tensor:
            if self.features == "digits":  # one classifier pass serves both features and classes
                return self.digits_outputs()[1]
            if self.features == "inception":  # one Inception pass serves fd/kid/prdc and fid/is
                return self.inception_fake()[0]
            return self.extractor()(self.fake)
        return self._once("fake_features", run)

    def digits_outputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, features) of the generated samples under the digits classifier."""
        from .digits_classifier import classify

        return self._once("digits_outputs", lambda: classify(self.fake))

    def reference(self) -> ReferenceStats:
        return self._once("reference", lambda: reference_stats(
            self.real_samples(), self.extractor(), self.real.name, self.split, self.resolution, self.cache_dir))

    # Inception (fid / is) always uses the Inception network, whatever ``features`` is.
    def inception(self) -> InceptionFeatures:
        def make() -> InceptionFeatures:
            if self.real.kind != "image":
                raise ConfigError(f"fid / is need image data; {self.real.name!r} is {self.real.kind}")
            if self.features == "inception":
                ext = self.extractor()
            else:
                ext = create_extractor("inception", self.inception_weights)
            assert isinstance(ext, InceptionFeatures)
            return ext
        return self._once("inception", make)

    def inception_fake(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._once("inception_fake", lambda: self.inception().features_and_logits(self.fake))

    def inception_reference(self) -> ReferenceStats:
        if self.features == "inception":
            return self.reference()
        return self._once("inception_reference", lambda: reference_stats(
            self.real_samples(), self.inception(), self.real.name, self.split, self.resolution, self.cache_dir))

    def class_probs(self) -> torch.Tensor:
        def run() -> torch.Tensor:
            if self.real.name not in CLASSIFIER_DATASETS or self.real.kind != "image":
                raise ConfigError(
                    f"metric 'classes' needs a trained classifier for dataset {self.real.name!r}; "
                    f"available for: {', '.join(CLASSIFIER_DATASETS)}"
                )
            return self.digits_outputs()[0].double().softmax(1)
        return self._once("class_probs", run)


METRICS: Registry[Callable[[EvalContext], dict[str, float]]] = Registry("metric")


def _frechet(fake_feats: torch.Tensor, ref: ReferenceStats) -> float:
    if min(len(fake_feats), len(ref.feats)) <= fake_feats.shape[1]:
        return frechet_distance(fake_feats, ref.feats)  # fewer samples than dimensions: the exact low-rank route
    mu, sigma = feature_statistics(fake_feats)
    return frechet_distance_from_stats(mu, sigma, ref.mu, ref.sigma)


@METRICS.register("fd")
def _fd(ctx: EvalContext) -> dict[str, float]:
    """Fréchet distance in the chosen feature space (the FID formula)."""
    return {"fd": _frechet(ctx.fake_features(), ctx.reference())}


@METRICS.register("kid")
def _kid(ctx: EvalContext) -> dict[str, float]:
    """Kernel distance (unbiased MMD^2, cubic kernel, 100 subsets of <= 1000) in the chosen feature space."""
    mean, std = kernel_inception_distance(
        ctx.fake_features(), ctx.reference().feats, KID_SUBSETS, KID_SUBSET_SIZE, ctx.seed)
    return {"kid_mean": mean, "kid_std": std}


@METRICS.register("prdc")
def _prdc(ctx: EvalContext) -> dict[str, float]:
    """Precision, recall, density, coverage (k = 5) in the chosen feature space.

    Naeem et al. compare equally many real and generated samples: with more real than
    generated, a fixed random subset of the real features of the generated count is used
    (coverage counts real samples reached, so an unequal count would bias it down).
    """
    real, fake = ctx.reference().feats, ctx.fake_features()
    if len(real) > len(fake):
        keep = torch.randperm(len(real), generator=torch.Generator().manual_seed(REFERENCE_SUBSET_SEED))[: len(fake)]
        real = real[keep]
    return prdc(real, fake, PRDC_K)


@METRICS.register("classes")
def _classes(ctx: EvalContext) -> dict[str, float]:
    """Classifier confidence, classes present, class-balance KL, label agreement (digits)."""
    probs = ctx.class_probs()
    real_dist = None
    if ctx.real.y is not None:
        real_dist = torch.bincount(ctx.real.y.long(), minlength=probs.shape[1]).double()
    return class_metrics(probs, real_dist, ctx.requested_labels)


@METRICS.register("modes")
def _modes(ctx: EvalContext) -> dict[str, float]:
    """Modes captured, high-quality fraction, reverse KL (2-D Gaussian mixtures)."""
    info = ctx.real.info
    if ctx.real.kind != "points" or "means" not in info or "std" not in info:
        raise ConfigError(
            f"metric 'modes' needs a 2-D Gaussian mixture dataset (ring8, grid25, ring:..., grid:...); "
            f"{ctx.real.name!r} has no mixture modes"
        )
    return mode_metrics(ctx.fake, info["means"], float(info["std"]))


@METRICS.register("fid")
def _fid(ctx: EvalContext) -> dict[str, float]:
    """FID: Fréchet distance of FID Inception-v3 pool3 features (needs the weights file)."""
    return {"fid": _frechet(ctx.inception_fake()[0], ctx.inception_reference())}


@METRICS.register("is")
def _is(ctx: EvalContext) -> dict[str, float]:
    """Inception Score (10 splits, mean and std) from FID Inception logits (needs the weights file)."""
    mean, std = inception_score(ctx.inception_fake()[1], IS_SPLITS, shuffle=True, seed=ctx.seed)
    return {"is_mean": mean, "is_std": std}


@METRICS.register("memorization")
def _memorization(ctx: EvalContext) -> dict[str, float]:
    """Nearest-training-image distance of samples vs of held-out real images (pixel space): copies?"""
    if ctx.real.kind != "image":
        raise ConfigError("metric 'memorization' is for image data")
    if ctx.held_out is None or not len(ctx.held_out):
        raise ConfigError(f"metric 'memorization' needs real images the generator never trained on; "
                          f"{ctx.real.name!r} has no held-out split here (a folder's test split is part of its "
                          "training set: train with data_fraction < 1 to keep the rest aside)")
    train = (ctx.train_set or ctx.real).x
    return memorization(ctx.fake, train, ctx.held_out.x)


# Metrics that compare against the real set in the chosen feature space (need the reference).
_FEATURE_METRICS = {"fd", "kid", "prdc"}


def _check_fake(fake: torch.Tensor, real: Dataset) -> torch.Tensor:
    if not isinstance(fake, torch.Tensor):
        raise GanforgeError(f"generated samples must be a torch.Tensor, got {type(fake).__name__}")
    fake = fake.detach().cpu().float()
    if real.kind == "image" and (fake.dim() != 4 or fake.shape[1] not in (1, 3)):
        raise GanforgeError(f"generated images must be [N, 1|3, H, W] in [0, 1]; got shape {tuple(fake.shape)}")
    if real.kind == "points" and (fake.dim() != 2 or fake.shape[1] != real.x.shape[1]):
        raise GanforgeError(f"generated points must be [N, {real.x.shape[1]}]; got shape {tuple(fake.shape)}")
    if len(fake) < 2:
        raise GanforgeError(f"need at least 2 generated samples, got {len(fake)}")
    if not torch.isfinite(fake).all():
        raise GanforgeError("generated samples contain NaN or Inf")
    return fake


def sample_outputs(fake: torch.Tensor, real: Dataset, features: str | None = None) -> dict[str, Any]:
    """The per-sample work of :func:`evaluate_samples` (the extractor's pass over the generated
    samples), for a shard of them: computed on each rank under DDP, concatenated in rank order and
    handed back as ``evaluate_samples(..., precomputed=...)``."""
    features = features or default_features(real)
    ctx = EvalContext(_check_fake(fake, real), real, features)
    if features == "digits":  # one classifier pass serves features and classes
        return {"digits_outputs": ctx.digits_outputs()}
    if features == "inception":
        return {"inception_fake": ctx.inception_fake()}
    return {"fake_features": ctx.fake_features()}


def evaluate_samples(
    fake: torch.Tensor,
    real: Dataset,
    metrics: list[str] | str,
    features: str | None = None,
    seed: int = 0,
    requested_labels: torch.Tensor | None = None,
    cache_dir: str | os.PathLike | None = None,
    inception_weights: str | os.PathLike | None = None,
    *,
    split: str | None = None,
    max_real: int = MAX_REAL,
    precomputed: dict[str, Any] | None = None,
    train_set: Dataset | None = None,
    held_out: Dataset | None = None,
) -> dict[str, Any]:
    """Compute ``metrics`` for generated samples ``fake`` against the real dataset ``real``.

    ``fake``: images [N, C, H, W] in [0, 1] or points [N, D], in data space. ``metrics``: names
    from ``METRICS`` (a list, or one comma-separated string). ``features``: the
    extractor for fd / kid / prdc (default :func:`default_features`). ``seed``: KID subsets and
    the Inception Score shuffle. ``requested_labels``: [N] labels a conditional generator was
    asked for (enables ``label_agreement``). ``split``: the name of the real split, recorded
    in the protocol and the cache key (default ``real.info["split"]`` or "unspecified").
    ``precomputed``: :func:`sample_outputs` of ``fake`` (computed in shards, e.g. one per rank).
    ``train_set`` / ``held_out``: what the generator trained on (default ``real``) and real images
    it never saw, for ``memorization``.

    Returns flat keys (only those computed): fd, kid_mean, kid_std, precision, recall, density,
    coverage, class_confident, classes_present, class_kl, label_agreement, modes, hq_frac,
    reverse_kl, fid, is_mean, is_std, mem_ratio, mem_copies, mem_copies_heldout, mem_fake_nn, mem_real_nn;
    and ``protocol``.
    """
    if isinstance(metrics, str):  # "fd,kid" as typed on a command line
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names = list(dict.fromkeys(metrics))
    if not names:
        raise ConfigError(f"no metrics requested; choose from: {', '.join(METRICS.list())}")
    fns = [METRICS.get(n) for n in names]  # unknown name -> ConfigError listing the allowed ones
    features = features or default_features(real)
    FEATURES.get(features)  # unknown extractor -> ConfigError before any work
    fake = _check_fake(fake, real)
    if requested_labels is not None and len(requested_labels) != len(fake):
        raise GanforgeError(f"{len(requested_labels)} requested labels for {len(fake)} generated samples")
    ctx = EvalContext(
        fake, real, features, seed, requested_labels, cache_dir, inception_weights,
        split or str(real.info.get("split", "unspecified")), max_real, train_set, held_out,
    )
    ctx._memo.update(precomputed or {})  # from sample_outputs over shards of ``fake``
    out: dict[str, Any] = {}
    for fn in fns:
        out.update(fn(ctx))

    protocol: dict[str, Any] = {
        "metrics": names,
        "n_fake": len(fake),
        "n_real": len(ctx.real_samples()),
        "reference": f"{real.name} ({ctx.split} split)",
        "resolution": ctx.resolution,
        "seed": seed,
        "ganforge_version": _version(),
    }
    if _FEATURE_METRICS & set(names):
        ext = ctx.extractor()
        protocol.update(extractor=ext.name, extractor_fingerprint=ext.fingerprint, extractor_describe=ext.describe,
                        resize=ext.resize, reference_cached=ctx.reference().cached)
    if {"fid", "is"} & set(names):
        inc = ctx.inception()
        protocol.update(inception=inc.describe, inception_resize=inc.resize)
    if "classes" in names:
        from .digits_classifier import classifier_card

        card = classifier_card()
        protocol["classifier"] = f"{card['name']} (test accuracy {card['test_accuracy']:.4f}, seed {card['seed']})"
    if "memorization" in names:
        protocol["memorization"] = (f"pixel L2 to the nearest of {len((train_set or real).x)} training images; "
                                    f"{len(held_out.x) if held_out is not None else 0} held-out real images; "
                                    "copies: nearer than 99 % of them after blur at <= 32 px and brightness and "
                                    "contrast normalisation, allowing mirror images and one-pixel shifts")
    if "modes" in names:
        protocol["modes_rule"] = "nearest mode; high quality if within 3 std (PacGAN / VEEGAN)"
    out["protocol"] = protocol
    return out
