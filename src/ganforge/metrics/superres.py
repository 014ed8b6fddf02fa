"""How good is an upscaling? PSNR and SSIM on the Y channel, and how much high-frequency detail comes back.

The protocol of the SR papers: each held-out image is cropped to a multiple of the scale, its LR
input made by the run's plain degradation (antialiased bicubic, 8-bit), upscaled whole by tiled
inference (as ``ganforge upscale`` does), and compared with the original on the luma channel
(ITU-R BT.601 Y of MATLAB's ``rgb2ycbcr``, in [16, 235] / 255) after cropping ``scale`` pixels at
each border. The baseline is bicubic upsampling of the same LR image.

Detail, measured, not claimed: the high-frequency band of an image is what it loses in a round
trip through the LR size, ``hf(x) = x - up(down(x))`` on Y (bicubic both ways). ``hf_ratio`` is the
energy of the output's band over the truth's (1: as much detail as the original; bicubic and
PSNR-oriented models sit well below 1); ``hf_corr`` is the correlation of the two bands (1: the
detail is the true detail, in place; invented texture raises ``hf_ratio`` but not ``hf_corr``).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..data.superres import bicubic_up, degrade
from .translation import psnr, ssim

Tensor = torch.Tensor


def rgb_to_y(x: Tensor) -> Tensor:
    """[N, 3, H, W] in [0, 1] -> [N, 1, H, W] BT.601 luma in [16/255, 235/255]."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (16 + (x * w).sum(1, keepdim=True)) / 255


def high_freq(y: Tensor, scale: int) -> Tensor:
    """The detail a round trip through 1/scale loses: y - up(down(y))."""
    h, w = y.shape[-2] // scale * scale, y.shape[-1] // scale * scale
    y = y[..., :h, :w]
    small = F.interpolate(y, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return y - F.interpolate(small, scale_factor=scale, mode="bicubic", align_corners=False)


def image_scores(out: Tensor, truth: Tensor, scale: int) -> dict[str, float]:
    """Y-channel PSNR / SSIM with a ``scale``-pixel border crop, and the high-frequency ratio and correlation."""
    yo, yt = rgb_to_y(out[None].double()), rgb_to_y(truth[None].double())
    b = scale
    co, ct = yo[..., b:-b, b:-b], yt[..., b:-b, b:-b]
    ho, ht = high_freq(yo, scale)[..., b:-b, b:-b], high_freq(yt, scale)[..., b:-b, b:-b]
    energy = float(ht.square().sum())
    corr = float((ho * ht).sum() / (ho.square().sum().sqrt() * ht.square().sum().sqrt()).clamp_min(1e-12))
    return {"psnr": float(psnr(co, ct)[0]), "ssim": float(ssim(co.float(), ct.float())[0]),
            "hf_ratio": float(ho.square().sum()) / max(energy, 1e-12), "hf_corr": corr}


def sr_metrics(upscale, images: list[tuple[str, Tensor]], scale: int) -> dict[str, Any]:
    """``upscale``: RGB LR [3, h, w] in [0, 1] -> [3, h*s, w*s]. Means over ``images`` (name, RGB [3, H, W])
    of the model's and the bicubic baseline's scores, plus per-image rows under ``images``."""
    rows = []
    for name, hr in images:
        h, w = hr.shape[1] // scale * scale, hr.shape[2] // scale * scale
        hr = hr[:, :h, :w]
        lr = degrade(hr[None], scale)[0]
        model = image_scores(upscale(lr), hr, scale)
        base = image_scores(bicubic_up(lr[None], scale)[0], hr, scale)
        rows.append({"image": name, "size": [h, w], **model, **{f"baseline_{k}": v for k, v in base.items()}})
    keys = [k for k in rows[0] if k not in ("image", "size")]
    result: dict[str, Any] = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    result["images"] = rows
    result["protocol"] = {"scale": scale, "channel": "Y (BT.601)", "border": scale, "baseline": "bicubic",
                          "degradation": "antialiased bicubic, 8-bit", "held_out": [r["image"] for r in rows]}
    return result


def run_metrics(recipe, G, data_name: str, tile: int = 256) -> dict[str, Any]:
    """:func:`sr_metrics` of an SR recipe's generator ``G`` on the held-out images of ``data_name`` (sr:SOURCE)."""
    from ..data.superres import held_out_images
    from ..inference.upscaling import upscale_tiled
    from ..version import __version__

    def upscale(lr: Tensor) -> Tensor:
        out = torch.empty(lr.shape[1] * recipe.scale, lr.shape[2] * recipe.scale, 3)
        upscale_tiled(G, recipe.scale, lr, out, tile)
        return out.permute(2, 0, 1)

    from ..errors import GanforgeError

    kind, _, source = data_name.partition(":")
    if kind != "sr":
        raise GanforgeError(f"--data {data_name!r}: a super-resolution run is measured on sr: data (sr:photos, "
                            "sr:folder:PATH)")
    need = 3 * recipe.scale + 11  # SSIM's 11 px window after the border crops and the crop to a multiple
    images = [(n, im) for n, im in held_out_images(source or "photos") if min(im.shape[1:]) >= need]
    if not images:
        raise GanforgeError(f"{data_name} has no held-out image of at least {need} px to measure "
                            "(sr:folder holds out every fifth file, one of two or more)")
    result = sr_metrics(upscale, images, recipe.scale)
    result["protocol"].update({"data": data_name, "images": "held out (never trained on)",
                               "ganforge_version": __version__})
    return result
