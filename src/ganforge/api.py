"""The public Python API: ``train``, ``load``, ``list_recipes``, ``list_datasets``.

``load(run)`` gives a :class:`Generator` (sample from noise), for pix2pix / CycleGAN runs a
:class:`Translator` (translate images), for SRGAN / ESRGAN runs an :class:`Upscaler`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import control, drawing
from .config import TrainConfig, resolve
from .data import DATASETS, DataSpec
from .errors import GanforgeError
from .recipes import RECIPES, Recipe, build_recipe
from .train import checkpoint as ck
from .train.rundir import read_run


def list_recipes(pattern: str = "*") -> list[str]:
    return RECIPES.list(pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.list(pattern)


def train(config: TrainConfig | dict[str, Any] | None = None, resume: str | Path | None = None,
          progress: bool = True) -> Path:
    """Train and return the run directory.

    ``config``: a :class:`TrainConfig`, or a dict of (dotted) keys resolved like the CLI does
    (the recipe's preset for the dataset, then these values). ``resume``: a run directory to
    continue; then ``config`` may only change ``steps``.
    """
    from .train.trainer import train as _train

    if resume is not None:
        _, cfg, _ = read_run(resume)
        if isinstance(config, TrainConfig):
            cfg.steps = config.steps
        elif config and "steps" in config:
            cfg.steps = int(config["steps"])
        return _train(cfg, resume=resume, progress=progress, resignal=True)
    cfg = config if isinstance(config, TrainConfig) else resolve(file_values=config or {})
    return _train(cfg, progress=progress, resignal=True)


class Generator:
    """A trained generator, ready to sample: ``ganforge.load(run_dir).sample(16)``."""

    def __init__(self, recipe: Recipe, net: torch.nn.Module, spec: DataSpec, run_dir: Path) -> None:
        self.recipe, self.net, self.spec, self.run_dir = recipe, net.eval(), spec, run_dir

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes if self.recipe.conditional else 0

    def to(self, device: str | torch.device) -> Generator:
        self.net.to(device)
        return self

    def with_sampler(self, sampler: str | None = None, steps: int | None = None) -> Generator:
        """Diffusion runs: sample with ``sampler`` (ddim, ddpm) in ``steps`` denoising steps from now on;
        one-pass generators refuse any choice. Returns self."""
        self.recipe.set_sampler(sampler, steps)
        return self

    def sample(self, n: int, seed: int | None = None, labels: torch.Tensor | int | None = None,
               truncation: float | None = None, batch_size: int = 500) -> torch.Tensor:
        """``n`` samples in data space: images [n, C, H, W] in [0, 1] or points [n, D].

        ``seed`` makes the draw reproducible; ``labels`` (an int or [n] tensor) picks classes
        for conditional generators, which otherwise draw classes uniformly. Text-to-image generators
        take a prompt (or a list of prompts, each for n/k images in turn) as ``labels``.
        """
        return drawing.sample(self.recipe, self.net, self.spec, n, seed, labels, truncation, batch_size)

    def synthesize(self, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 500) -> torch.Tensor:
        """Samples in data space from given latents (for interpolation and latent exploration)."""
        return drawing.synthesize(self.recipe, self.net, self.spec, z, labels, batch_size)

    def draw(self, n: int, seed: int, label: torch.Tensor | int | None = None,
             truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` samples and the labels they were drawn for (None when unconditional)."""
        return drawing.draw(self.recipe, self.net, self.spec, n, seed, label, truncation)

    def w(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float | None = None) -> torch.Tensor:
        """StyleGAN2's intermediate latents [N, w_dim] for z [N, z_dim] (truncated towards the mean w)."""
        return control.w_of(self.recipe, self.net, z.to(self.device), None if labels is None else
                            labels.to(self.device), truncation)

    def mix(self, row_seeds: list[int], col_seeds: list[int], layers: str | None = None,
            truncation: float | None = None, label: int | None = None) -> torch.Tensor:
        """The style-mixing grid ``[(R + 1) * (C + 1), C, H, W]`` (see :func:`ganforge.control.style_mix`)."""
        return control.style_mix(self.recipe, self.net, self.spec, row_seeds, col_seeds, layers, truncation, label)

    def interpolate(self, seeds: list[int], frames: int = 16, truncation: float | None = None,
                    label: int | None = None) -> torch.Tensor:
        """A latent walk through ``seeds``: ``[(len(seeds) - 1) * frames + 1, C, H, W]`` in [0, 1]."""
        return control.interpolate(self.recipe, self.net, self.spec, seeds, frames, truncation, label)

    def text_walk(self, prompts: list[str], frames: int = 16, seed: int = 0,
                  truncation: float | None = None) -> torch.Tensor:
        """Text2image runs: a walk between prompts' sentence embeddings at one latent,
        ``[(len(prompts) - 1) * frames + 1, C, H, W]`` in [0, 1]."""
        return control.text_walk(self.recipe, self.net, self.spec, prompts, frames, seed, truncation)

    def labels_for(self, n: int, labels: torch.Tensor | int | None, gen: torch.Generator) -> torch.Tensor | None:
        """The labels a draw of ``n`` will use: as given, or uniform over classes; None if unconditional."""
        return drawing.labels_for(self.recipe, self.spec, n, labels, gen, self.device)


class Translator:
    """A trained image-to-image model: ``ganforge.load(run_dir).translate(image)``."""

    def __init__(self, recipe: Recipe, net: torch.nn.Module, spec: DataSpec, run_dir: Path) -> None:
        self.recipe, self.net, self.spec, self.run_dir = recipe, net.eval(), spec, run_dir

    @property
    def directions(self) -> tuple[str, ...]:
        return self.recipe.directions

    def to(self, device: str | torch.device) -> Translator:
        self.net.to(device)
        return self

    def translate(self, x: Any, direction: str = "AtoB", fit: str | None = None) -> torch.Tensor:
        """Images of the source domain -> the other domain, in [0, 1].

        ``x``: a tensor [C, H, W] or [N, C, H, W] in [0, 1], a PIL image, or a numpy array [H, W] /
        [H, W, C] (uint8, uint16 or float in [0, 1]); any channel count and size. ``fit``: ``resize``
        (to the trained size) or ``tile`` (at the image's own scale); default by how the model was
        trained (:mod:`ganforge.translation`). Returns [C', H', W'] for one image, [N, ...] for a batch.
        """
        from .translation import as_tensor, translate_images

        batch = as_tensor(x)
        out = translate_images(self.recipe, self.net, self.spec, list(batch), direction, fit)
        return torch.stack(out) if torch.is_tensor(x) and x.dim() == 4 else out[0]


class Upscaler:
    """A trained super-resolution model: ``ganforge.load(run_dir).upscale(image)``."""

    def __init__(self, recipe: Recipe, net: torch.nn.Module, psnr_net: torch.nn.Module, spec: DataSpec,
                 run_dir: Path) -> None:
        self.recipe, self.net, self.psnr_net, self.spec, self.run_dir = recipe, net.eval(), psnr_net.eval(), spec, \
            run_dir
        self._blends: dict[float, torch.nn.Module] = {}

    @property
    def scale(self) -> int:
        return self.recipe.scale

    def to(self, device: str | torch.device) -> Upscaler:
        self.net.to(device)
        self.psnr_net.to(device)
        self._blends.clear()
        return self

    def network(self, blend: float = 1.0) -> torch.nn.Module:
        """The generator for ``blend``: 0 the PSNR-oriented one, 1 the GAN one, between their interpolation."""
        from .superres import blended

        if blend not in self._blends:
            self._blends = {blend: blended(self.psnr_net, self.net, float(blend)).eval()}
        return self._blends[blend]

    def upscale(self, x: Any, blend: float = 1.0, tile: int = 256) -> Any:
        """An image ``scale`` x larger: a PIL image (any mode; the same mode back), or a tensor [C, H, W] /
        [N, C, H, W] in [0, 1] (1-4 channels; RGB [3, sH, sW] back, alpha composited on black)."""
        import numpy as np
        from PIL import Image

        from .superres import upscale_pil, upscale_tiled
        from .translation import as_tensor, prepare

        G = self.network(blend)
        if isinstance(x, Image.Image):
            return upscale_pil(G, self.scale, x, tile)
        if not torch.is_tensor(x) and not isinstance(x, np.ndarray):
            raise GanforgeError(f"cannot upscale a {type(x).__name__}; expected a PIL image, a tensor or an array")
        batch = as_tensor(x)
        outs = []
        for img in batch:
            rgb = prepare(img, 3)
            out = torch.empty(rgb.shape[1] * self.scale, rgb.shape[2] * self.scale, 3)
            upscale_tiled(G, self.scale, rgb, out, tile)
            outs.append(out.permute(2, 0, 1))
        return torch.stack(outs) if torch.is_tensor(x) and x.dim() == 4 else outs[0]


def load(run_dir: str | Path, ema: bool = True, device: str | torch.device = "cpu",
         checkpoint: str = "latest") -> Generator | Translator | Upscaler:
    """Load a run's generator: the EMA weights when the run kept them; ``checkpoint="best"``
    for the weights that scored best during training (``--eval-every``). Translation runs
    (pix2pix, CycleGAN) load as a :class:`Translator`."""
    run_dir, cfg, spec = read_run(run_dir)
    recipe = build_recipe(cfg, spec)
    nets = ck.split_weights(ck.load_weights(ck.latest_checkpoint(run_dir, checkpoint)))
    name = recipe.generator_name
    G = recipe.nets[name]
    ck.load_into(G, nets.get(f"{name}_ema") if ema and f"{name}_ema" in nets else nets.get(name), name)
    if recipe.upscales:  # a run stopped before its GAN stage has no PSNR-oriented copy: G is both
        psnr = recipe.nets["G_psnr"]
        ck.load_into(psnr, nets.get("G_psnr"), "G_psnr")
        return Upscaler(recipe, G, psnr if int(psnr.taken_at) >= 0 else G, spec, run_dir).to(device)
    return (Translator if recipe.translates else Generator)(recipe, G, spec, run_dir).to(device)
