"""An encoder that guesses a latent from an image: the optional start of a projection (``--init encoder``).

A small convolutional network (stride-2 blocks down to 4 x 4, then a linear layer) trained on the
generator's own samples to predict the latent that drew them (w for style-based generators, the continuous
part of z otherwise), with a mean squared error: the "learned encoder" start of in-domain GAN inversion
and of pSp-style pipelines, trained here in seconds on a CPU because the samples are free. Optimisation
then refines the guess. The trained encoder is kept beside the run (``RUN/inversion-encoder-<space>``,
safetensors + JSON) and reused while the generator's weights are the same.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import DataSpec
from ..metrics.features import hash_tensors
from . import Recipe
from .drawing import latents

Tensor = torch.Tensor
STEPS = 1500
BATCH = 64
LR = 2e-3
WIDTH = 32


class LatentEncoder(nn.Module):
    """Images [N, C, R, R] in [0, 1] -> latents [N, out]."""

    def __init__(self, channels: int, resolution: int, out: int, width: int = WIDTH) -> None:
        super().__init__()
        layers, c, r = [], channels, resolution
        while r > 4:
            nxt = min(width * resolution // r * 2, 256)
            layers += [nn.Conv2d(c, nxt, 3, 2, 1), nn.LeakyReLU(0.2)]
            c, r = nxt, r // 2
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 1), *layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c * r * r, 512), nn.LeakyReLU(0.2), nn.Linear(512, out))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x * 2 - 1))


def _targets(recipe: Recipe, G: nn.Module, spec: DataSpec, space: str, n: int, seed: int,
             device: torch.device) -> tuple[Tensor, Tensor]:
    """``n`` samples in data space and the latents that drew them."""
    z, labels = latents(recipe, spec, n, seed, None, None, device)
    with torch.no_grad():
        x = spec.from_model(recipe.generate(G, z, labels=labels if recipe.conditional else None).float())
        if space == "z":
            code = 0 if recipe.conditional else recipe.one_hot_code
            return x, z[:, code:].flatten(1)
        return x, G.w(z, labels if recipe.conditional else None)


def train_encoder(recipe: Recipe, G: nn.Module, spec: DataSpec, space: str, steps: int | None = None,
                  seed: int = 0) -> LatentEncoder:
    steps = steps or STEPS
    device = next(G.parameters()).device
    _, probe = _targets(recipe, G, spec, space, 2, seed, device)
    torch.manual_seed(seed)
    enc = LatentEncoder(spec.shape[0], spec.shape[-1], probe.shape[1]).to(device)
    opt = torch.optim.Adam(enc.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for step in range(steps):
        x, target = _targets(recipe, G, spec, space, BATCH, seed * 1_000_003 + step + 1, device)
        loss = F.mse_loss(enc(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return enc.eval().requires_grad_(False)


def encoder_for(recipe: Recipe, G: nn.Module, spec: DataSpec, space: str, run_dir: Path | None) -> LatentEncoder:
    """The run's encoder for ``space`` (w, or z): loaded when one was trained for these weights, else trained
    (and saved beside the run when ``run_dir`` is given and writable)."""
    from safetensors.torch import load_file, save_file

    key = hash_tensors(G.state_dict())
    base = None if run_dir is None else Path(run_dir) / f"inversion-encoder-{space.replace('+', '')}"
    if base is not None and base.with_suffix(".json").is_file():
        meta = json.loads(base.with_suffix(".json").read_text())
        if meta.get("generator") == key:
            enc = LatentEncoder(spec.shape[0], spec.shape[-1], int(meta["out"]))
            enc.load_state_dict(load_file(str(base.with_suffix(".safetensors"))))
            return enc.to(next(G.parameters()).device).eval().requires_grad_(False)
    enc = train_encoder(recipe, G, spec, space)
    if base is not None:
        try:
            save_file({k: v.cpu().contiguous() for k, v in enc.state_dict().items()},
                      str(base.with_suffix(".safetensors")))
            out = enc.head[-1].out_features
            base.with_suffix(".json").write_text(json.dumps({"generator": key, "out": out, "steps": STEPS,
                                                             "batch": BATCH, "space": space}))
        except OSError:
            pass  # a read-only run directory: train again next time
    return enc
