"""A recipe is a GAN method: its networks, losses and optimizers, expressed as training phases.

The trainer runs ``recipe.phases`` every step, in order. A phase names the optimizer it
steps, how often it runs (``every``, for lazy regularization) and how many times in a row
(``repeats``, for n_critic). Adding a method means adding a model file and a recipe file;
the trainer does not change.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data import DataSpec
from ..errors import ConfigError, GanforgeError
from ..registry import Registry

Tensor = torch.Tensor
Stats = dict[str, Tensor]


class StepContext:
    """What a phase may draw on in one training step.

    ``real()`` returns a fresh batch ``(x, y)`` in model space on the device each call (so
    n_critic repeats see new data); for two-domain data ``real_b()`` returns domain B's batch: the
    partners of the latest ``real()`` batch when paired, an independent batch otherwise;
    ``noise``/``randint``/``gen`` draw from the trainer's generator;
    ``cache`` carries tensors from one phase to the next within the step (e.g. the fake
    batch, so the generator runs forward once per step).
    """

    def __init__(self, step: int, batch_size: int, real: Callable[[], tuple[Tensor, Tensor | None]],
                 gen: torch.Generator, rank: int = 0, world_size: int = 1,
                 real_b: Callable[[], Tensor] | None = None, ema: nn.Module | None = None) -> None:
        self.step = step
        self.ema = ema  # the trainer's EMA of the generator (None when off): read-only for recipes
        self.batch_size = batch_size  # per process
        self.real = real
        self.real_b = real_b
        self.gen = gen  # the trainer's generator on the device: all randomness of a step comes from it
        self.rank, self.world_size = rank, world_size
        self.cache: dict[str, Tensor] = {}

    # Under DDP every rank's generator is in the same state: per-sample randomness is drawn for
    # the global batch and each rank keeps its slice, so W processes with batch B/W draw exactly
    # what one process with batch B draws (and the saved generator state is every rank's).
    def local(self, t: Tensor) -> Tensor:
        """This rank's slice of a tensor drawn for the global batch ``[W * n, ...]`` -> ``[n, ...]``."""
        if self.world_size == 1:
            return t
        n = len(t) // self.world_size
        return t[self.rank * n : (self.rank + 1) * n]

    def globalize(self, x: Tensor) -> Tensor:
        """A local batch placed at this rank's slice of a zero global batch (for per-sample random ops)."""
        if self.world_size == 1:
            return x
        pad = [torch.zeros_like(x)] * self.world_size
        pad[self.rank] = x
        return torch.cat(pad)

    def noise(self, shape: tuple[int, ...]) -> Tensor:
        """N(0, 1) on the device."""
        return torch.randn(shape, generator=self.gen, device=self.gen.device)

    def randint(self, high: int, n: int) -> Tensor:
        """[n] int64 in [0, high) on the device."""
        return torch.randint(high, (n,), generator=self.gen, device=self.gen.device)


@dataclass
class Phase:
    name: str
    run: Callable[[StepContext], tuple[Tensor, Stats]]  # -> (loss to minimise, stats to log)
    updates: str  # the optimizer (and network) this phase steps
    grads: tuple[str, ...] = ()  # networks that need gradients here; default: just `updates`
    every: int = 1
    repeats: int = 1
    active: Callable[[int], bool] | None = None  # step -> whether the phase runs (training stages); None: always

    def needs_grad(self) -> tuple[str, ...]:
        return self.grads or (self.updates,)


@dataclass
class Recipe:
    """Base class. Subclasses fill ``nets`` and implement ``phases``/``generate``."""

    cfg: TrainConfig
    data: DataSpec
    nets: dict[str, nn.Module] = field(default_factory=dict)
    generator_name: str = "G"  # the network the trainer keeps an EMA copy of and samples from
    conditional: bool = False  # True when generate() honours labels
    has_styles: ClassVar[bool] = False  # an intermediate latent w and per-layer styles (StyleGAN2)
    translates: ClassVar[bool] = False  # maps images of one domain to another (recipes/translation.py)
    upscales: ClassVar[bool] = False  # maps low-resolution images to high-resolution ones (recipes/superres.py)
    texts: ClassVar[bool] = False  # draws pictures of captions: "labels" are token ids (recipes/text2image.py)

    def __post_init__(self) -> None:
        """Subclasses build their networks here."""

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def fit_data(self, x: Tensor) -> None:
        """Called once by the trainer, before training, with the whole training set in model space,
        for networks that keep data statistics in buffers (saved with their weights). Default: nothing."""

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def latent(self, n: int, gen: torch.Generator | None, device: torch.device,
               truncation: float | None = None) -> Tensor:
        """n latent codes for :meth:`generate`."""
        raise NotImplementedError

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None,
                 truncation: float | None = None) -> Tensor:
        """Samples in model space from latents ``z`` with generator ``G`` (the live one or its EMA).

        ``truncation`` is applied where the method defines it: recipes that truncate in z do it in
        :meth:`latent` and ignore it here; StyleGAN2 truncates w here and ignores it in :meth:`latent`.
        """
        raise NotImplementedError

    @property
    def sampler_name(self) -> str | None:
        """The iterative sampler and its steps (``ddim-50``) for recipes that have one; None for one-pass generators."""
        return None

    def set_sampler(self, sampler: str | None = None, steps: int | None = None) -> None:
        """Choose an iterative sampler and its steps (diffusion); one-pass generators refuse."""
        if sampler is not None or steps is not None:
            raise GanforgeError(f"--sampler and --steps are for ddpm runs; a {self.cfg.recipe} generator draws a "
                                "sample in one forward pass")

    def sampling_network(self, G: nn.Module) -> nn.Module:
        """The part of ``G`` that drawing a sample runs (a VAE's decoder; all of G otherwise)."""
        return G

    def reconstructions(self, G: nn.Module, x: Tensor) -> Tensor | None:
        """Images passed through an encoder and back (VAE), model space; None for recipes without an encoder."""
        return None

    def state_dict(self) -> dict:
        """Training state the recipe keeps outside its networks (ADA's p), saved in checkpoints."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""


RECIPES: Registry[Recipe] = Registry("recipe")


def truncated_normal(shape: tuple[int, ...], psi: float | None, gen: torch.Generator | None,
                     device: torch.device) -> Tensor:
    """N(0, I) latents; with ``psi`` every entry beyond +-psi is redrawn (BigGAN's truncation)."""
    z = torch.randn(shape, generator=gen, device=device)
    if psi is None:
        return z
    if not psi > 0:
        raise ConfigError(f"truncation={psi} is not allowed; expected a number > 0")
    for _ in range(100):
        bad = z.abs() > psi
        if not bad.any():
            break
        z = torch.where(bad, torch.randn(shape, generator=gen, device=device), z)
    return z.clamp(-psi, psi)


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Learning-rate multiplier at ``step`` for the configured decay schedule."""
    o = cfg.optim
    t = min(step / max(cfg.steps, 1), 1.0)
    t = max(0.0, (t - o.decay_start) / (1 - o.decay_start))  # constant until decay_start, then the schedule
    if o.lr_decay == "linear":
        return 1 - (1 - o.lr_final_frac) * t
    if o.lr_decay == "cosine":
        return o.lr_final_frac + (1 - o.lr_final_frac) * 0.5 * (1 + math.cos(math.pi * t))
    return 1.0
