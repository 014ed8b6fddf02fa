"""Using a trained super-resolution model: ``ganforge upscale`` and ``ganforge.load(run).upscale``.

* Weights: ``blend`` 0 is the PSNR-oriented generator, 1 the GAN generator (its EMA), values between
  interpolate the two weight by weight (Wang et al. 2018's network interpolation: fidelity against detail).
* Any size: the image is cut into ``tile`` x ``tile`` LR tiles, each run with the generator's receptive
  radius of surrounding context (at most ``MAX_PAD`` pixels) that is cropped away again, and written
  straight into the output array, so memory is bounded by one tile and the output, and no seam
  shows: each output pixel sees what it would see untiled (for generators deeper than the pad,
  all but their faintest far context).
* Any mode: grey, grey+alpha, RGB, RGBA, palette and 16-bit grey images come back in the same mode
  (grey is upscaled as RGB and converted back to ITU-R 601 luma; alpha is upscaled bicubically;
  palette images come back as RGB(A); 16-bit grey stays 16-bit).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from ..errors import GanforgeError

TILE = 256  # LR pixels per tile side
MAX_PAD = 96  # LR pixels of context around each tile, at most (deeper generators see further than this)
LUMA = (0.299, 0.587, 0.114)


def blended(G_psnr: nn.Module, G_gan: nn.Module, blend: float) -> nn.Module:
    """The network with weights (1 - blend) * psnr + blend * gan (buffers from the GAN model)."""
    if not 0 <= blend <= 1:
        raise GanforgeError(f"--blend {blend} is not allowed; expected a number in [0, 1] (0: the PSNR-oriented "
                            "model, 1: the GAN model)")
    if blend == 1:
        return G_gan
    if blend == 0:
        return G_psnr
    import copy

    net = copy.deepcopy(G_gan)
    psnr = dict(G_psnr.named_parameters())
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.lerp_(psnr[name], 1 - blend)  # p + (1 - blend) * (psnr - p)
    return net


def tile_grid(h: int, w: int, tile: int) -> list[tuple[int, int]]:
    return [(t, le) for t in range(0, h, tile) for le in range(0, w, tile)]


@torch.no_grad()
def upscale_tiled(G: nn.Module, scale: int, img: torch.Tensor, out: np.ndarray | torch.Tensor, tile: int = TILE,
                  pad: int | None = None, on_tile: Callable[[], None] | None = None) -> None:
    """RGB [3, H, W] in [0, 1] -> ``out`` [H*scale, W*scale, 3], filled tile by tile (a float tensor, or
    a uint8 / uint16 array, quantised per tile); an ``out`` array of [H*scale, W*scale] receives luma."""
    if tile < 1:
        raise GanforgeError(f"--tile {tile} is not allowed; expected an integer >= 1 (LR pixels)")
    device = next(G.parameters()).device
    pad = min(getattr(G, "receptive_radius", MAX_PAD), MAX_PAD) if pad is None else pad
    _, h, w = img.shape
    s = scale
    top = 65535.0 if isinstance(out, np.ndarray) and out.dtype == np.uint16 else 255.0
    for t, le in tile_grid(h, w, tile):
        t0, l0 = max(0, t - pad), max(0, le - pad)
        t1, l1 = min(h, t + tile + pad), min(w, le + tile + pad)
        x = img[:, t0:t1, l0:l1][None].to(device) * 2 - 1
        y = ((G(x).float().clamp(-1, 1) + 1) / 2)[0].cpu()  # [3, (t1-t0)s, (l1-l0)s]
        th, tw = min(tile, h - t), min(tile, w - le)
        crop = y[:, (t - t0) * s : (t - t0 + th) * s, (le - l0) * s : (le - l0 + tw) * s].permute(1, 2, 0)
        where = (slice(t * s, (t + th) * s), slice(le * s, (le + tw) * s))
        if isinstance(out, np.ndarray):
            values = crop.numpy() @ np.array(LUMA, dtype=np.float32) if out.ndim == 2 else crop.numpy()
            out[where] = (values * top + 0.5).astype(out.dtype)
        else:
            out[where] = crop
        if on_tile:
            on_tile()


# ------------------------------------------------------------------ images in any mode


def split_modes(img) -> tuple[torch.Tensor, torch.Tensor | None, str, int]:
    """A PIL image -> (RGB [3, H, W], alpha [1, H, W] or None, output mode, bits per sample)."""
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode == "CMYK" or mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        img = img.convert("RGB")
    mode = img.mode
    a = np.asarray(img)
    if mode.startswith("I") or mode == "F":
        values, bits, out_mode = np.clip(a.astype(np.float32) / (65535.0 if mode != "F" else 1.0), 0, 1), 16, "I;16"
    else:
        values, bits, out_mode = a.astype(np.float32) / 255.0, 8, mode
    values = values.reshape(values.shape[0], values.shape[1], -1)
    alpha = None
    if values.shape[2] in (2, 4):
        values, alpha = values[:, :, :-1], torch.from_numpy(np.ascontiguousarray(values[:, :, -1:])).permute(2, 0, 1)
    rgb = torch.from_numpy(np.ascontiguousarray(values)).permute(2, 0, 1)
    if rgb.shape[0] == 1:
        rgb = rgb.expand(3, -1, -1)
    return rgb.contiguous(), alpha, out_mode, bits


def upscale_pil(G: nn.Module, scale: int, img, tile: int = TILE, on_tile=None, mark: bool = False):
    """A PIL image of any mode -> the upscaled PIL image in the same mode (palette -> RGB(A)); with ``mark``
    an 8-bit colour result gets the invisible watermark in place (:mod:`ganforge.runs.provenance`), and
    ``result.info["ganforge_marked"]`` says whether it did."""
    from PIL import Image

    from ..runs.provenance import mark_array

    rgb, alpha, mode, bits = split_modes(img)
    h, w = rgb.shape[1:]
    grey = mode in ("L", "LA", "I;16")
    out = np.empty((h * scale, w * scale) + (() if grey else (3,)), dtype=np.uint16 if bits == 16 else np.uint8)
    upscale_tiled(G, scale, rgb, out, tile, on_tile=on_tile)
    del rgb
    marked = mark and mark_array(out)  # before the alpha joins: RGB only, tile by tile, no copy
    if bits == 16:
        result = Image.fromarray(out)  # uint16 [H, W] -> I;16
    else:  # no copy of the (possibly huge) array: PIL reads it in place
        result = Image.frombuffer("L" if grey else "RGB", (w * scale, h * scale), out, "raw", "L" if grey else "RGB",
                                  0, 1)
    if alpha is not None:
        a = Image.fromarray((alpha[0].numpy() * 255 + 0.5).astype(np.uint8)).resize(result.size, Image.BICUBIC)
        result = Image.merge("LA" if result.mode == "L" else "RGBA", (*result.split(), a))
    result.info["ganforge_marked"] = marked
    return result
