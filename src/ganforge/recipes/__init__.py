"""GAN methods by name: ``RECIPES.list()``, ``build_recipe(cfg, data_spec)``, ``resolve(...)`` a config."""
from __future__ import annotations

from ..registry import import_all
from .base import RECIPES, Phase, Recipe, StepContext, lr_factor, truncated_normal
from .catalog import default_recipe, recipe_class, resolve

import_all(__name__, __path__)  # every recipe file registers itself


def build_recipe(cfg, data) -> Recipe:
    return RECIPES.create(cfg.recipe, cfg, data)


__all__ = ["RECIPES", "Phase", "Recipe", "StepContext", "build_recipe", "default_recipe", "lr_factor", "recipe_class",
           "resolve", "truncated_normal"]
