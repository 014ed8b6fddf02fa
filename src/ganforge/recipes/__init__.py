"""GAN methods by name: ``RECIPES.list()``, ``build_recipe(cfg, data_spec)``."""
from __future__ import annotations

from . import conditional, dcgan, vanilla  # noqa: F401  (register)
from .base import RECIPES, Phase, Recipe, StepContext, lr_factor, truncated_normal

POINT_DATASETS = ("ring8", "grid25", "ring", "grid")


# Labelled built-in image sets whose default is class-conditional: on digits the conditional DCGAN
# beats every unconditional candidate on fd, precision, recall, coverage and class balance at once
# (benchmarks/RESULTS.md, "The default run"). Sampling without --label draws classes uniformly.
CONDITIONAL_DEFAULT = {"digits": "cgan"}


def default_recipe(data: str) -> str:
    """vanilla for 2D point sets, cgan for the bundled digits, dcgan for other images."""
    name = data.split(":")[0]
    return "vanilla" if name in POINT_DATASETS else CONDITIONAL_DEFAULT.get(name, "dcgan")


def build_recipe(cfg, data) -> Recipe:
    return RECIPES.create(cfg.recipe, cfg, data)


__all__ = ["RECIPES", "Phase", "Recipe", "StepContext", "build_recipe", "default_recipe", "lr_factor",
           "truncated_normal"]
