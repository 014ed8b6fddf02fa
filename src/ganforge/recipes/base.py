"""A recipe is a method: its networks, losses and optimizers as training phases, and everything else
that depends on the method, so that nothing outside ``recipes/`` has to know its name.

The trainer runs ``recipe.phases`` every step, in order. A phase names the optimizer it
steps, how often it runs (``every``, for lazy regularization) and how many times in a row
(``repeats``, for n_critic). Beyond training, a recipe declares:

* its kind of use after training: ``pipeline``, the class ``ganforge.load`` returns (sample, translate,
  upscale), which ``serve``, the demo page, ``export`` and the model card ask;
* its training pictures: ``preview`` (the outputs the health check and grids show) and ``pictures``;
* what measures it: ``measure`` (the one path of ``ganforge eval`` and of evaluation during training);
* its own config section (``@config_section`` on a dataclass in its file), its default data
  (``default_data``) and the datasets it is the default for (``default_for``).

Adding a method means adding a model file, a recipe file, its configs and tests; the trainer,
config.py and the CLI do not change.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data import Dataset, DataSpec
from ..data.run_data import RunData
from ..errors import ConfigError, GanforgeError
from ..inference.pipelines import Generator, Pipeline
from ..registry import Registry
from ..runs import checkpoint as ck

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


GRID_SAMPLES = 64  # samples in a training grid (and in the health check's spread)
GRID_CLASSES = 16  # classes a training grid shows, one row each (stacked digits has 1,000; clusters up to 50)


@dataclass
class PictureInputs:
    """What a run's training pictures are drawn from, fixed for the whole run (so grids are comparable)."""

    data: Dataset
    x: Tensor  # the training images (domain A) in model space, on the device
    x_b: Tensor | None  # domain B (two-domain data), model space, on the device
    fixed_idx: Tensor  # training examples the pictures show (translation inputs, reconstructions)
    seed: int  # the latents of the sample grid

    @property
    def device(self) -> torch.device:
        return self.x.device


@dataclass
class Picture:
    """One training picture, saved as ``<tag><suffix>.png``: data-space images laid out ``nrow`` per row, or
    for 2D points a scatter plot of ``images`` over the ``real`` points."""

    images: Tensor
    nrow: int | None = None
    suffix: str = ""
    real: Tensor | None = None  # 2D data: the real points drawn beneath


@dataclass
class Shards:
    """Evaluation under DDP: each rank extracts the features of its share of the samples; ``gather`` joins
    them on rank 0 (``None`` elsewhere)."""

    rank: int
    world_size: int
    gather: Callable[[dict], dict | None]

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class Recipe:
    """Base class. Subclasses fill ``nets`` and implement ``phases``/``generate``."""

    cfg: TrainConfig
    data: DataSpec
    nets: dict[str, nn.Module] = field(default_factory=dict)
    generator_name: str = "G"  # the network the trainer keeps an EMA copy of and samples from
    conditional: bool = False  # True when generate() honours labels
    pipeline: ClassVar[type[Pipeline]] = Generator  # what ganforge.load returns: how the run is used
    default_data: ClassVar[str | None] = None  # the data trained on when --data is not given (a task of its own)
    default_for: ClassVar[tuple[str, ...]] = ()  # datasets this is the default recipe for ("points"; "*": any)
    why_default: ClassVar[str] = ""  # one line: why it is the default for those datasets (said when it is chosen)
    max_side_from_data: ClassVar[int] = 128  # resolution=0 takes the images' side, at most this
    adversarial: ClassVar[bool] = True  # False: trained by likelihood, no adversary (cfg.loss does not apply)
    own_metrics: ClassVar[str | None] = None  # a fixed metric set (--metrics does not apply), described
    samplers: ClassVar[tuple[str, ...]] = ()  # iterative samplers it offers (diffusion); () for one-pass generators
    has_styles: ClassVar[bool] = False  # an intermediate latent w and per-layer styles (StyleGAN2)
    texts: ClassVar[bool] = False  # draws pictures of captions: "labels" are token ids (recipes/text2image.py)

    def __post_init__(self) -> None:
        """Subclasses build their networks here."""

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def check_steps(self, steps: int) -> None:
        """Refuse (ConfigError) a training length that would leave the main network untrained, e.g. a run that
        ends inside a preparatory stage. Called by the trainer before training; loading a run never calls it."""

    @classmethod
    def prepare_data(cls, cfg: TrainConfig, data: Dataset) -> Dataset:
        """The training set as this recipe trains on it, before its networks are built (their class count
        comes from it); e.g. pseudo-labels from clusters. Deterministic for ``cfg`` (a resumed run calls it
        again). Default: ``data`` unchanged."""
        return data

    @classmethod
    def steps_from_data(cls, cfg: TrainConfig) -> int:
        """The training length for ``steps: 0`` (a preset that sizes itself to the data; ``cfg.resolution`` is
        already known). Recipes without such a rule refuse it."""
        raise ConfigError(f"steps=0 (from the data) is not offered by recipe {cfg.recipe}; expected an integer >= 1")

    @classmethod
    def fine_tune_values(cls, cfg: TrainConfig, spec: DataSpec) -> dict:
        """Config values a run fine-tuned from a run of this recipe (``cfg``, ``spec``) takes by default: what
        shapes the networks (recipe, resolution, channels, ``net.*``, ``reg.*``, the recipes' own sections)."""
        d = cfg.to_dict()
        own = {name: d[name] for name in cfg.sections if name in d}
        return {"recipe": cfg.recipe, "resolution": cfg.resolution, "channels": spec.shape[0], "net": d["net"],
                "reg": d["reg"], **own}

    @classmethod
    def student_values(cls, cfg: TrainConfig, width: float) -> dict:
        """Config values that narrow the generator of a run of this recipe to ``width`` x its channels for a
        distilled student (``ganforge distill``); the discriminator keeps its size."""
        return {"net": {"g_width": max(1, round(cfg.net.generator_width * width))}}

    @property
    def labels_are_classes(self) -> bool:
        """Whether the labels a draw uses are classes a judge can read (``label_agreement``): not for token ids
        (text-to-image) or cluster ids."""
        return not self.texts

    def fit_data(self, data: Dataset) -> None:
        """Called once by the trainer, before training, with the whole training set (as :meth:`prepare_data`
        returned it), for statistics of the data: buffers saved with the weights, or what training draws from
        (text2image's word swaps). Default: nothing."""

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

    def same_inputs(self, ctx: StepContext) -> Callable[[nn.Module], Tensor]:
        """This step's generator inputs held fixed, as a function: generator -> its model-space outputs on them, so
        that a teacher and a student see the same inputs (``ganforge distill``). Here: latents, with the training
        batch's labels when the recipe is conditional."""
        real, labels = ctx.real()
        z = ctx.local(self.latent(len(real) * ctx.world_size, ctx.gen, ctx.gen.device))
        labels = labels if self.conditional else None
        return lambda G: self.generate(G, z, labels)

    def walk(self, z: Tensor, t: Tensor) -> Tensor:
        """The latents of a walk through the rows of ``z`` ``[S, D]``, at fractions ``t`` ``[F]`` of each segment:
        ``[(S - 1) * F + 1, D]``, spherical (``ganforge interpolate``)."""
        from ..inference.control import slerp

        return torch.cat([slerp(z[i], z[i + 1], t) for i in range(len(z) - 1)] + [z[-1:]])

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

    @classmethod
    def intended_use(cls, cfg: TrainConfig) -> str:
        """The model card's intended use of a run of this recipe."""
        return cls.pipeline.intended

    @property
    def one_hot_code(self) -> int:
        """Leading latent entries that are a one-hot categorical code (InfoGAN), 0 when none."""
        return 0

    # ------------------------------------------------------------ after training
    def load_generator(self, weights: dict[str, dict[str, Tensor]], ema: bool = True) -> nn.Module:
        """The generator with its saved ``weights`` (by network name): the EMA copy when the run kept one."""
        name = self.generator_name
        G = self.nets[name]
        ck.load_into(G, weights.get(f"{name}_ema") if ema and f"{name}_ema" in weights else weights.get(name), name)
        return G

    def load_pipeline(self, weights: dict[str, dict[str, Tensor]], run_dir, ema: bool = True) -> Pipeline:
        """The run's :attr:`pipeline` from its saved ``weights``."""
        return self.pipeline(self, self.load_generator(weights, ema), self.data, run_dir)

    # ------------------------------------------------------------ training pictures
    def grid_labels(self, pics: PictureInputs) -> Tensor | None:
        """One row per class (the first GRID_CLASSES classes) for a conditional recipe on labelled data; None
        otherwise."""
        k = min(pics.data.num_classes, GRID_CLASSES)
        if not (self.conditional and k):
            return None
        return torch.arange(k, device=pics.device).repeat_interleave(max(1, GRID_SAMPLES // k))

    def preview(self, G: nn.Module, pics: PictureInputs, n: int = GRID_SAMPLES) -> Tensor:
        """Data-space outputs of the fixed inputs (here: the fixed latents, one row per class when conditional):
        what the sample grid shows and the health check measures the spread of. ``G`` is in eval mode."""
        gen = torch.Generator(pics.device).manual_seed(pics.seed)
        labels = self.grid_labels(pics)
        n = len(labels) if labels is not None else n
        return pics.data.from_model(self.generate(G, self.latent(n, gen, pics.device), labels=labels).float())

    def pictures(self, G: nn.Module, pics: PictureInputs) -> list[Picture]:
        """The training pictures of one moment of the run (``G`` in eval mode): the sample grid, and for recipes
        with an encoder pairs of fixed training images and their reconstructions."""
        if pics.data.kind == "points":
            return [Picture(self.preview(G, pics, 2500), real=pics.data.x[:2500])]
        labels = self.grid_labels(pics)
        out = [Picture(self.preview(G, pics), None if labels is None else len(labels) // int(labels.unique().numel()))]
        x = pics.x[pics.fixed_idx[:32]]
        recon = self.reconstructions(G, x)
        if recon is not None:
            pairs = torch.stack([x, recon.float()], 1).flatten(0, 1).float()
            out.append(Picture(pics.data.from_model(pairs), 8, "-reconstructions"))
        return out

    def outputs_domain(self, data: Dataset) -> Tensor:
        """Real data-space examples of what the generator outputs (the health check's reference spread)."""
        return data.x

    # ------------------------------------------------------------ measuring
    def measure(self, G: nn.Module, data: RunData, names: list[str], n: int, seed: int, *,
                draw_seed: int | None = None, features: str | None = None, inception_weights: str | None = None,
                shards: Shards | None = None) -> dict | None:
        """This recipe's metrics of generator ``G`` (eval mode) on the run's ``data``: here ``n`` samples drawn
        with ``draw_seed`` (default ``seed``) against the whole training split, by ``names`` (fd, kid, prdc,
        classes, memorization, ...). Under DDP (``shards``) every rank calls it and only rank 0 gets the
        result (the others None). Called through :func:`ganforge.measure.measure`."""
        from ..inference.drawing import draw
        from ..metrics import evaluate_samples, sample_outputs

        fake, labels = draw(self, G, self.data, n, seed if draw_seed is None else draw_seed)
        reference = data.reference()
        precomputed = None
        if shards is not None and shards.world_size > 1:
            mine = sample_outputs(torch.tensor_split(fake, shards.world_size)[shards.rank], reference)
            precomputed = shards.gather(mine)
            if precomputed is None:
                return None
        test = data.held_out() if "memorization" in names else None
        return evaluate_samples(fake, reference, names, features=features, seed=seed,
                                requested_labels=labels if self.labels_are_classes else None,
                                inception_weights=inception_weights, precomputed=precomputed, train_set=data.train,
                                held_out=test)

    def state_dict(self) -> dict:
        """Training state the recipe keeps outside its networks (ADA's p), saved in checkpoints."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""


RECIPES: Registry[Recipe] = Registry("recipe")


def example_inputs(recipe: Recipe, data: Dataset, n: int, device: torch.device,
                   seed: int = 0) -> Callable[[nn.Module], Tensor]:
    """:meth:`Recipe.same_inputs` for the first ``n`` training examples and latents from ``seed``: generator ->
    its outputs on them (shape probes, cost measures)."""
    x = data.to_model(data.x[:n]).to(device)
    y = data.y[:n].to(device) if data.y is not None else None
    x_b = data.to_model(data.x_b[:n]).to(device) if data.x_b is not None else x
    ctx = StepContext(0, n, lambda: (x, y), torch.Generator(device).manual_seed(seed), real_b=lambda: x_b)
    return recipe.same_inputs(ctx)


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
