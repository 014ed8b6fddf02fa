"""GAN methods by name: ``RECIPES.list()``, ``build_recipe(cfg, data_spec)``."""
from __future__ import annotations

from . import conditional, dcgan, vanilla  # noqa: F401  (register)
from .base import RECIPES, Phase, Recipe, StepContext, lr_factor, truncated_normal

POINT_DATASETS = ("ring8", "grid25", "ring", "grid")


def default_recipe(data: str) -> str:
    """vanilla for 2D point sets, dcgan for images."""
    return "vanilla" if data.split(":")[0] in POINT_DATASETS else "dcgan"


def build_recipe(cfg, data) -> Recipe:
    return RECIPES.create(cfg.recipe, cfg, data)


__all__ = ["RECIPES", "Phase", "Recipe", "StepContext", "build_recipe", "default_recipe", "lr_factor",
           "truncated_normal"]
