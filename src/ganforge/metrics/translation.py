"""Is a translation right? PSNR, SSIM and L1 for paired data; label preservation, cycle error and
fd in the target domain for unpaired data; each beside a trivial baseline.

* PSNR: ``10 log10(1 / MSE)`` per image on [0, 1] values (all channels), averaged over images.
* SSIM: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, over the
  valid region, per channel, averaged: scikit-image's ``structural_similarity(gaussian_weights=True,
  use_sample_covariance=False, data_range=1)``.
* Baselines: ``input`` - the input itself, in the target's channels; ``gray_lut`` - for each grey
  level (256 bins) the mean colour of the training targets' pixels of that level; ``identity`` (unpaired)
  - the untranslated image judged as if it were a translation.
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
LUT_BINS = 256


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


def fit_gray_lut(grey: Tensor, colour: Tensor, bins: int = LUT_BINS) -> Tensor:
    """[bins, C]: the mean colour of the training pixels at each grey level (global mean where a level is unseen)."""
    level = (grey[:, 0].clamp(0, 1) * (bins - 1)).round().long().flatten()  # [N*H*W]
    c = colour.permute(0, 2, 3, 1).reshape(-1, colour.shape[1]).double()
    sums = torch.zeros(bins, colour.shape[1], dtype=torch.float64).index_add_(0, level, c)
    counts = torch.bincount(level, minlength=bins).double()[:, None]
    return torch.where(counts > 0, sums / counts.clamp_min(1), c.mean(0)).float()


def apply_gray_lut(lut: Tensor, grey: Tensor) -> Tensor:
    level = (grey[:, 0].clamp(0, 1) * (len(lut) - 1)).round().long()  # [N, H, W]
    return lut[level].permute(0, 3, 1, 2).contiguous()


def baseline(kind: str, inputs: Tensor, channels: int, train: Dataset) -> Tensor:
    """The trivial prediction the translation must beat."""
    if kind == "gray_lut":
        return apply_gray_lut(fit_gray_lut(train.x, train.x_b), inputs)
    return set_channels(inputs, channels)


def image_scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    return {"psnr": float(psnr(pred, target).mean()), "ssim": float(ssim(pred, target).mean()),
            "l1": float((pred - target).abs().mean())}


def paired_metrics(out: Tensor, held_out: Dataset, train: Dataset) -> dict[str, Any]:
    """PSNR / SSIM / L1 of translations ``out`` of ``held_out.x`` against ``held_out.x_b``, and the baseline's."""
    kind = held_out.info.get("baseline", "input")
    base = baseline(kind, held_out.x, held_out.x_b.shape[1], train)
    result: dict[str, Any] = image_scores(out, held_out.x_b)
    result.update({f"baseline_{k}": v for k, v in image_scores(base, held_out.x_b).items()})
    result["protocol"] = {"baseline": kind, "n_pairs": len(held_out)}
    return result


def labels_kept(images: Tensor, labels: Tensor, judge: str) -> float:
    """The share of ``images`` the ``judge`` classifier reads as ``labels``."""
    from .digits_classifier import classify

    return float((classify(images, name=judge)[0].argmax(1) == labels).float().mean())


JUDGES = {"handwritten": "digits_classifier", "typeset": "typeset_classifier"}


def unpaired_metrics(translate, held_out: Dataset, train: Dataset, seed: int = 0) -> dict[str, Any]:
    """Cycle error, fd in each target domain, and (digits2typeset) label preservation, on held-out images.

    ``translate(x, direction)`` maps data-space images; fd is measured in the digits classifier's
    features for digits-like domains, the random CNN's otherwise, against the training images of
    the target domain.
    """
    from .evaluate import evaluate_samples

    a, b = held_out.x, held_out.x_b
    ab, ba = translate(a, "AtoB"), translate(b, "BtoA")
    aba, bab = translate(ab, "BtoA"), translate(ba, "AtoB")
    result: dict[str, Any] = {"cycle_l1": float(0.5 * ((aba - a).abs().mean() + (bab - b).abs().mean()))}
    domains = train.info.get("domains", ["A", "B"])
    digits_like = list(domains) == ["handwritten", "typeset"]
    features = "digits" if digits_like else None
    for key, fake, real_x in (("fd_ab", ab, train.x_b), ("fd_ba", ba, train.x)):
        real = Dataset("digits" if digits_like else key, real_x, None, "image")
        result[key] = float(evaluate_samples(fake, real, ["fd"], features=features, seed=seed)["fd"])
    if digits_like and held_out.y is not None and held_out.y_b is not None:
        result["labels_kept_ab"] = labels_kept(ab, held_out.y, JUDGES["typeset"])
        result["labels_kept_ba"] = labels_kept(ba, held_out.y_b, JUDGES["handwritten"])
        result["identity_kept_ab"] = labels_kept(a, held_out.y, JUDGES["typeset"])  # no translation at all
        result["identity_kept_ba"] = labels_kept(b, held_out.y_b, JUDGES["handwritten"])
    result["protocol"] = {"n_a": len(a), "n_b": len(b), "features": features or "random-cnn",
                          "judges": JUDGES if digits_like else None}
    return result


def translation_metrics(translate, train: Dataset, held_out: Dataset | None, seed: int = 0) -> dict[str, Any]:
    """The metrics of a translation model on held-out data, paired or unpaired by the data; ``translate(x,
    direction)`` maps data-space images. The protocol says whether the images were truly held out."""
    from ..version import __version__

    measured = held_out if held_out is not None else train
    if train.paired:
        result = paired_metrics(translate(measured.x, "AtoB"), measured, train)
    else:
        result = unpaired_metrics(translate, measured, train, seed)
    truly = held_out is not None and measured.info.get("held_out", True)
    result["protocol"].update({"data": train.name, "images": "held out (never trained on)" if truly else
                               "training images (the data has no held-out split)", "seed": seed,
                               "ganforge_version": __version__})
    return result
