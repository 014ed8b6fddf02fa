"""GAN methods by name: ``RECIPES.list()``, ``build_recipe(cfg, data_spec)``."""
from __future__ import annotations

from ..config import POINT_DATASETS, default_recipe
from . import conditional, dcgan, ddpm, stylegan2, superres, text2image, translation, vae, vanilla  # noqa: F401  (register)
from .base import RECIPES, Phase, Recipe, StepContext, lr_factor, truncated_normal


def build_recipe(cfg, data) -> Recipe:
    return RECIPES.create(cfg.recipe, cfg, data)


__all__ = ["POINT_DATASETS", "RECIPES", "Phase", "Recipe", "StepContext", "build_recipe", "default_recipe", "lr_factor",
           "truncated_normal"]
