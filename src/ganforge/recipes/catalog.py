"""Config resolution that needs to know the recipes: which recipe a dataset gets by default, and which
data a recipe trains on when ``--data`` is not given. Each recipe declares both (``Recipe.default_for``,
``Recipe.default_data``); nothing here names one.
"""
from __future__ import annotations

from typing import Any

from ..config import POINT_DATASETS, TrainConfig, merge, parse_set, preset, validate
from ..console import info
from ..data.base import dataset_builder
from ..data.folder import AUTO_MAX_RESOLUTION, folder_facts, resolve_root
from ..errors import ConfigError
from .base import RECIPES, Recipe

ANY_DATA = "*"  # Recipe.default_for entry: the default for data no other recipe claims
FALLBACK_RESOLUTION = 16  # resolution=0 when no image header is readable (the loader then explains)


def recipe_class(name: str) -> type[Recipe]:
    return RECIPES.get(name)  # type: ignore[return-value]


def fine_tune_values(source: str) -> dict[str, Any]:
    """The config a fine-tuning run takes from its source (``--init-from``): what shapes the networks."""
    from ..runs.rundir import read_run

    _, cfg, spec = read_run(source)
    return recipe_class(cfg.recipe).fine_tune_values(cfg, spec)


def default_recipe(data: str) -> str:
    """The recipe a dataset gets when none is named: the one whose ``default_for`` names the dataset (2D point
    sets: ``points``), else the one that claims any data."""
    name = data.split(":")[0]
    key = "points" if name in POINT_DATASETS else name
    claims = {n: recipe_class(n).default_for for n in RECIPES.list()}
    for wanted in (key, ANY_DATA):
        for recipe, names in claims.items():
            if wanted in names:
                return recipe
    raise ConfigError(f"no recipe is the default for {data!r}; name one with --recipe ({', '.join(RECIPES.list())})")


def resolve(
    file_values: dict[str, Any] | None = None,
    flags: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> TrainConfig:
    """Merge the layers in precedence order and validate.

    ``flags`` are explicit CLI options (None values are ignored); ``sets`` are ``key=value``.
    The preset is chosen by the recipe and data those layers name.
    """
    layers: list[dict[str, Any]] = [file_values or {}, {k: v for k, v in (flags or {}).items() if v is not None}]
    layers.append(dict(parse_set(s) for s in sets or []))
    probe = TrainConfig()
    for layer in layers:
        merge(probe, layer)
    if probe.init_from:  # fine-tuning: the source run's networks, unless the layers above say otherwise
        layers.insert(0, fine_tune_values(probe.init_from))
        probe = TrainConfig()
        for layer in layers:
            merge(probe, layer)
    own_data = recipe_class(probe.recipe).default_data if probe.recipe else None
    if own_data and not any("data" in layer for layer in layers):
        layers.insert(0, {"data": own_data})
        probe.data = own_data
    dataset_builder(probe.data)  # an unknown dataset is refused before any work, with the fix
    recipe = probe.recipe or default_recipe(probe.data)
    recipe_class(recipe)
    cfg = TrainConfig()
    merge(cfg, preset(recipe, probe.data))
    for layer in layers:
        merge(cfg, layer)
    cfg.recipe = recipe
    explain = cfg.resolution == 0 or cfg.steps == 0 or not probe.recipe  # otherwise nothing to choose or say
    folder = cfg.data.startswith("folder:") and explain
    facts = folder_facts(resolve_root(cfg.data.partition(":")[2])) if folder else None  # a walk + file headers
    chose = []
    if cfg.resolution == 0:  # "from the data"
        if facts is None:
            raise ConfigError(f"resolution=0 (from the data) is for folder: data; give {cfg.data} a side, e.g. 16")
        most = min(recipe_class(recipe).max_side_from_data, AUTO_MAX_RESOLUTION)
        cfg.resolution = min(facts.side or FALLBACK_RESOLUTION, most)
        chose.append(f"{cfg.resolution} px (the largest power of two <= the median side, up to {most} for "
                     f"{recipe}; --resolution to choose)")
    if cfg.steps == 0:  # "from the data": the recipe's rule
        cfg.steps = recipe_class(recipe).steps_from_data(cfg)
        chose.append(f"{cfg.steps:,} steps (sized to this side; --steps to choose)")
    if facts is not None and facts.side and (chose or not probe.recipe):  # none readable: the loader explains
        why = "" if probe.recipe else f" -> {recipe}, {recipe_class(recipe).why_default}"
        info(f"{cfg.data}: {facts.describe()}{why}" + (f"; {', '.join(chose)}" if chose else ""))
    return validate(cfg)
