"""Is a translation right? PSNR, SSIM and L1 for paired data; label preservation, cycle error and
fd in the target domain for unpaired data; each beside the strongest trivial baseline.

* PSNR: ``10 log10(1 / MSE)`` per image on [0, 1] values (all channels), averaged over images.
* SSIM: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, over the
  valid region, per channel, averaged: scikit-image's ``structural_similarity(gaussian_weights=True,
  use_sample_covariance=False, data_range=1)``.
* Paired baselines, every one measured, the best by PSNR reported as *the* baseline: ``input`` - the
  input itself, in the target's channels; ``mean`` - the training targets' mean image, whatever the input;
  ``lut`` - a per-pixel lookup: for each input value (grey: 256 levels; colour: 16 per channel) the mean
  colour of the training targets' pixels with that value. ``identity`` (unpaired) - the untranslated image
  judged as if it were a translation.
* Label preservation (digits2typeset): translate, then classify in the target domain - handwritten
  by the digits classifier, typeset by the typeset classifier (both shipped, trained on data the
  translation never saw) - and count how often the source digit survives.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..data import Dataset
from ..data.images import set_channels

Tensor = torch.Tensor
LUT_LEVELS = {1: 256, 3: 16}  # input quantisation of the lookup baseline, by input channels
BASELINES = ("input", "mean", "lut")


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """[N, C, H, W] in [0, 1] -> [N] PSNR in dB (capped at 100 for identical images)."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1 / mse.clamp_min(1e-10))).clamp_max(100.0)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """[N, C, H, W] -> [N] mean SSIM (images of at least 11x11)."""
    c = x.shape[1]
    w = _gaussian_window().to(x.device).expand(c, 1, 11, 11)
    x, y = x.double(), y.double()
    w = w.double()

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).float()


def lut_index(x: Tensor) -> Tensor:
    """[N, C, H, W] in [0, 1] (C 1 or 3) -> [N, H, W]: each pixel's quantised value as one bin index."""
    levels = LUT_LEVELS[x.shape[1]]
    q = (x.clamp(0, 1) * (levels - 1)).round().long()
    index = q[:, 0]
    for c in range(1, x.shape[1]):
        index = index * levels + q[:, c]
    return index


def fit_lut(inputs: Tensor, targets: Tensor) -> Tensor:
    """[bins, C']: the mean target colour of the training pixels at each quantised input value (the global mean
    where a value is unseen)."""
    index = lut_index(inputs).flatten()
    bins = LUT_LEVELS[inputs.shape[1]] ** inputs.shape[1]
    c = targets.permute(0, 2, 3, 1).reshape(-1, targets.shape[1]).double()
    sums = torch.zeros(bins, targets.shape[1], dtype=torch.float64).index_add_(0, index, c)
    counts = torch.bincount(index, minlength=bins).double()[:, None]
    return torch.where(counts > 0, sums / counts.clamp_min(1), c.mean(0)).float()


def apply_lut(lut: Tensor, inputs: Tensor) -> Tensor:
    return lut[lut_index(inputs)].permute(0, 3, 1, 2).contiguous()


def baseline(kind: str, inputs: Tensor, train: Dataset) -> Tensor:
    """The trivial prediction ``kind`` (one of :data:`BASELINES`) for ``inputs``, fitted on the training pairs."""
    if kind == "lut":
        return apply_lut(fit_lut(train.x, train.x_b), inputs)
    if kind == "mean":
        return train.x_b.float().mean(0, keepdim=True).expand(len(inputs), -1, -1, -1)
    return set_channels(inputs, train.x_b.shape[1])


def image_scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    return {"psnr": float(psnr(pred, target).mean()), "ssim": float(ssim(pred, target).mean()),
            "l1": float((pred - target).abs().mean())}


def paired_metrics(out: Tensor, held_out: Dataset, train: Dataset, seed: int = 0) -> dict[str, Any]:
    """PSNR / SSIM / L1, and fd against the held-out targets (the random CNN's features), of translations ``out``
    of ``held_out.x``, beside every trivial baseline's (``baselines``); ``baseline_*`` are the strongest's (highest
    PSNR)."""
    from .evaluate import evaluate_samples

    targets = Dataset(f"{train.name}-targets", held_out.x_b, None, "image")

    def scores(pred: Tensor) -> dict[str, float]:
        fd = evaluate_samples(pred, targets, ["fd"], features="random-cnn", seed=seed)["fd"]
        return {**image_scores(pred, held_out.x_b), "fd": float(fd)}

    result: dict[str, Any] = scores(out)
    trivial = {kind: scores(baseline(kind, held_out.x, train)) for kind in BASELINES}
    best = max(trivial, key=lambda k: trivial[k]["psnr"])
    result.update({f"baseline_{k}": v for k, v in trivial[best].items()})
    result["baselines"] = trivial
    result["protocol"] = {"baseline": best, "n_pairs": len(held_out), "features": "random-cnn"}
    return result


def labels_kept(images: Tensor, labels: Tensor, judge: str) -> float:
    """The share of ``images`` the ``judge`` classifier reads as ``labels``."""
    from .digits_classifier import classify

    return float((classify(images, name=judge)[0].argmax(1) == labels).float().mean())


JUDGES = {"handwritten": "digits_classifier", "typeset": "typeset_classifier"}


def unpaired_metrics(translate, held_out: Dataset, train: Dataset, seed: int = 0,
                     directions: tuple[str, ...] = ("AtoB", "BtoA")) -> dict[str, Any]:
    """Cycle error (models that translate both ways), fd in each target domain, and (digits2typeset) label
    preservation, on held-out images, for each of ``directions``.

    ``translate(x, direction)`` maps data-space images; fd is measured in the digits classifier's
    features for digits-like domains, the random CNN's otherwise, against the training images of
    the target domain.
    """
    from .evaluate import evaluate_samples

    domains = train.info.get("domains", ["A", "B"])
    digits_like = list(domains) == ["handwritten", "typeset"]
    features = "digits" if digits_like else None
    ways = {"AtoB": ("ab", held_out.x, held_out.y, train.x_b, "typeset"),
            "BtoA": ("ba", held_out.x_b, held_out.y_b, train.x, "handwritten")}
    result: dict[str, Any] = {}
    out = {d: translate(ways[d][1], d) for d in directions}
    if set(directions) == set(ways):
        back = {"AtoB": "BtoA", "BtoA": "AtoB"}
        result["cycle_l1"] = float(sum((translate(out[d], back[d]) - ways[d][1]).abs().mean() for d in ways) / 2)
    for d in directions:
        key, source, labels, target_real, judge = ways[d]
        real = Dataset("digits" if digits_like else f"fd_{key}", target_real, None, "image")
        result[f"fd_{key}"] = float(evaluate_samples(out[d], real, ["fd"], features=features, seed=seed)["fd"])
        if digits_like and labels is not None:
            result[f"labels_kept_{key}"] = labels_kept(out[d], labels, JUDGES[judge])
            result[f"identity_kept_{key}"] = labels_kept(source, labels, JUDGES[judge])  # no translation at all
    result["protocol"] = {"n_a": len(held_out.x), "n_b": len(held_out.x_b), "features": features or "random-cnn",
                          "judges": JUDGES if digits_like else None, "directions": list(directions)}
    return result


def translation_metrics(translate, train: Dataset, held_out: Dataset | None, seed: int = 0,
                        directions: tuple[str, ...] = ("AtoB", "BtoA")) -> dict[str, Any]:
    """The metrics of a translation model on held-out data, paired or unpaired by the data (paired: A -> B
    only, when the model translates that way); ``translate(x, direction)`` maps data-space images. The
    protocol says whether the images were truly held out."""
    from ..version import __version__

    measured = held_out if held_out is not None else train
    if train.paired and "AtoB" in directions:
        result = paired_metrics(translate(measured.x, "AtoB"), measured, train, seed)
    else:
        result = unpaired_metrics(translate, measured, train, seed, directions)
    truly = held_out is not None and measured.info.get("held_out", True)
    result["protocol"].update({"data": train.name, "images": "held out (never trained on)" if truly else
                               "training images (the data has no held-out split)", "seed": seed,
                               "ganforge_version": __version__})
    return result
