"""Knowledge distillation into a lighter generator (GAN Compression, Li et al. 2020; OMGD, Ren et al. 2021).

The student is an ordinary run of the teacher's recipe, usually with a narrower generator (``net.g_width``), so
sample, eval, serve, demo and export work on it unchanged. Training adds to every generator phase of the recipe
(its adversarial loss stays):

* ``distill.pixel`` x L1(student(inputs), teacher(inputs)) on the same inputs (latents and labels, or the
  images to translate; :meth:`Recipe.same_inputs`);
* ``distill.features`` x the mean squared distance between the teacher's feature maps and the student's,
  mapped to the teacher's channels by learned 1x1 convolutions (the adapters). The maps compared are, at
  each spatial size the generator works at, the last one whose channel count the narrowing changed.

The discriminator starts from scratch, as the student's G does: starting it from the teacher run's D (GAN
Compression's choice, ``distill.teacher_d``) pinned it near 100 % accuracy from the first step on the digits and
the student collapsed (benchmarks/RESULTS.md, "Lighter generators"). ``ganforge distill`` builds the student's
config.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import TrainConfig, merge, parse_set, validate
from ..data import Dataset
from ..errors import ConfigError
from ..metrics.cost import cost
from ..recipes import Recipe, build_recipe, recipe_class
from ..recipes.base import Phase, StepContext, example_inputs
from ..runs import checkpoint as ck
from ..runs.rundir import read_run

Tensor = torch.Tensor
ADAPTERS = "distill"  # the adapters' name among the recipe's networks (saved with the run, for exact resume)
MAX_FEATURES = 4  # feature maps compared, the deepest sizes first dropped


def student_config(teacher: str, width: float, sets: list[str] | None = None, **flags) -> TrainConfig:
    """The teacher run's config with the generator narrowed to ``width`` x its channels and ``distill.teacher``
    set; ``flags`` (steps, seed, out, device, ...) and ``sets`` (key=value) override it."""
    if not 0 < width <= 1:
        raise ConfigError(f"--width {width} is not allowed; expected a fraction in (0, 1], e.g. 0.5 or 0.25")
    _, cfg, _ = read_run(teacher)
    if not recipe_class(cfg.recipe).adversarial:
        raise ConfigError(f"distillation is for GAN runs; {teacher} is a {cfg.recipe} run (no discriminator)")
    merge(cfg, recipe_class(cfg.recipe).student_values(cfg, width))
    cfg.distill.teacher = str(teacher)
    cfg.init_from, cfg.freeze_d, cfg.out = None, 0, None
    merge(cfg, {k: v for k, v in flags.items() if v is not None})
    merge(cfg, dict(parse_set(s) for s in sets or []))
    return validate(cfg)


class FeatureTap:
    """``with FeatureTap(net, names) as maps:`` keeps the outputs of those submodules of ``net`` in ``maps``
    during the forward passes inside the block (the hooks go when it ends)."""

    def __init__(self, net: nn.Module, names: list[str]) -> None:
        self.modules = dict(net.named_modules())
        self.names = names
        self.maps: dict[str, Tensor] = {}

    def __enter__(self) -> dict[str, Tensor]:
        def keep(name: str) -> Callable:
            def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
                self.maps[name] = output
            return hook

        self.handles = [self.modules[n].register_forward_hook(keep(n)) for n in self.names]
        return self.maps

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()


def feature_shapes(G: nn.Module, run: Callable[[nn.Module], Tensor]) -> dict[str, tuple[int, ...]]:
    """The output shape of every submodule of ``G`` that gives one 4D feature map, in the order the outputs are
    finished in a forward pass (a module called more than once with different shapes is left out)."""
    seen: dict[str, set[tuple[int, ...] | None]] = {}

    def hook(module: nn.Module, args: tuple, output: Tensor, name: str) -> None:
        shapes = seen.pop(name, set())  # popped and put back: the order is that of the latest output
        shapes.add(tuple(output.shape[1:]) if isinstance(output, Tensor) and output.dim() == 4 else None)
        seen[name] = shapes

    handles = [m.register_forward_hook(lambda m, a, o, name=name: hook(m, a, o, name))
               for name, m in G.named_modules() if name]
    try:
        with torch.no_grad():
            run(G)
    finally:
        for h in handles:
            h.remove()
    return {name: next(iter(s)) for name, s in seen.items() if len(s) == 1 and None not in s}


def matched_layers(teacher: dict[str, tuple[int, ...]], student: dict[str, tuple[int, ...]]) -> list[str]:
    """Per spatial size, the last layer (same name in both) whose channels the narrowing changed."""
    last: dict[tuple[int, ...], str] = {}
    for name, s in student.items():
        t = teacher.get(name)
        if t is not None and t[1:] == s[1:] and t[0] != s[0]:
            last[s[1:]] = name
    names = list(last.values())
    return names[-MAX_FEATURES:]


class Distiller:
    """Attached by the trainer when ``cfg.distill.teacher`` is set (see the module's docstring)."""

    def __init__(self, cfg: TrainConfig, recipe: Recipe, data: Dataset, device: torch.device) -> None:
        self.cfg, self.recipe = cfg, recipe
        source, tcfg, spec = read_run(cfg.distill.teacher)
        if tcfg.recipe != cfg.recipe:
            raise ConfigError(f"distill.teacher {cfg.distill.teacher} is a {tcfg.recipe} run and this is "
                              f"{cfg.recipe}; a student learns from a teacher of the same recipe")
        if cfg.init_from:
            raise ConfigError("distill.teacher and init_from do not combine: a student's networks start from "
                              "scratch or from its teacher (distill.inherit, distill.teacher_d)")
        self.weights = ck.split_weights(ck.load_weights(ck.latest_checkpoint(source)))
        teacher_recipe = build_recipe(tcfg, spec)
        self.teacher = teacher_recipe.load_generator(self.weights, ema=True).to(device).eval().requires_grad_(False)
        student = recipe.nets[recipe.generator_name]
        probe = example_inputs(recipe, data, 2, device)
        t_shapes, s_shapes = feature_shapes(self.teacher, probe), feature_shapes(student, probe)
        self.layers = matched_layers(t_shapes, s_shapes) if cfg.distill.features else []
        adapters = nn.ModuleDict({n.replace(".", "_"): nn.Conv2d(s_shapes[n][0], t_shapes[n][0], 1)
                                  for n in self.layers}).to(device)
        recipe.nets[ADAPTERS] = adapters
        self.costs = {"teacher_cost": cost(self.teacher, probe, 2), "student_cost": cost(student, probe, 2)}

    def start_from_teacher(self) -> dict:
        """A fresh student's start: with ``distill.inherit`` its G takes every tensor of the teacher's G of the same
        name and shape (StyleGAN2's mapping network, class embeddings); with ``distill.teacher_d`` the other
        networks start from the teacher run's where their shapes fit (D)."""
        taken, inherited = [], []
        if self.cfg.distill.inherit:
            student = self.recipe.nets[self.recipe.generator_name]
            mine, theirs = student.state_dict(), self.teacher.state_dict()
            inherited = [k for k, t in theirs.items() if k in mine and mine[k].shape == t.shape]
            student.load_state_dict({**mine, **{k: theirs[k] for k in inherited}})
        for name, net in self.recipe.nets.items() if self.cfg.distill.teacher_d else ():
            weights = self.weights.get(name)
            if name == self.recipe.generator_name or weights is None or ck.first_mismatch(net, weights):
                continue
            net.load_state_dict(weights)
            taken.append(name)
        return {"teacher": str(self.cfg.distill.teacher), "from_teacher": taken, "inherited": len(inherited),
                "layers": self.layers, **self.costs}

    def extend(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """The adapters train with the generator, in its optimizer (their own parameter group)."""
        params = list(self.recipe.nets[ADAPTERS].parameters())
        if params:
            optimizers[self.recipe.generator_name].add_param_group({"params": params})

    def wrap(self, phases: list[Phase]) -> list[Phase]:
        """Every per-step generator phase also minimises the distillation loss."""
        g = self.recipe.generator_name
        out, wrapped = [], False
        for phase in phases:
            if phase.updates == g and phase.every == 1:
                phase = Phase(phase.name, self._with_distillation(phase.run), g, (*phase.needs_grad(), ADAPTERS),
                              phase.every, phase.repeats, phase.active)
                wrapped = True
            out.append(phase)
        if not wrapped:
            raise ConfigError(f"recipe {self.cfg.recipe} has no per-step generator phase to distil into")
        return out

    def _with_distillation(self, run: Callable[[StepContext], tuple[Tensor, dict]]):
        def phase(ctx: StepContext) -> tuple[Tensor, dict]:
            loss, stats = run(ctx)
            extra, more = self.loss(ctx)
            return loss + extra, {**stats, **more}

        return phase

    def loss(self, ctx: StepContext) -> tuple[Tensor, dict]:
        d = self.cfg.distill
        outputs, student = self.recipe.same_inputs(ctx), self.recipe.nets[self.recipe.generator_name]
        with torch.no_grad(), FeatureTap(self.teacher, self.layers) as t_maps:
            target = outputs(self.teacher).float()
        with FeatureTap(student, self.layers) as s_maps:
            fake = outputs(student).float()
        pixel = F.l1_loss(fake, target)
        adapters = self.recipe.nets[ADAPTERS]
        feats = [F.mse_loss(adapters[n.replace(".", "_")](s_maps[n]).float(), t_maps[n].float()) for n in self.layers]
        feature = torch.stack(feats).mean() if feats else torch.zeros((), device=fake.device)
        weight = max(0.0, 1 - ctx.step / (d.fade * self.cfg.steps)) if d.fade < 1 else 1.0
        loss = weight * (d.pixel * pixel + d.features * feature)
        return loss, {"Distill/pixel": pixel.detach(), "Distill/features": feature.detach()}
