"""One way to measure a run: evaluation during training (``eval.every``), the measurement at the end of
training, and ``ganforge eval RUN`` all call :func:`measure`, which asks the run's recipe for its metric
set (samplers: fd, kid, prdc, classes, ...; translators and upscalers: their own; text-to-image: both
and the caption measures), so the paths cannot drift apart.
"""
from __future__ import annotations

import torch.nn as nn

from .data.run_data import RunData
from .metrics import default_metrics
from .recipes.base import Recipe, Shards


def final_names(data: RunData) -> list[str]:
    """What the end of training measures for the report: the data's defaults without kid (slow), with prdc, and
    memorisation beside quality wherever the data has real images the run never trained on."""
    names = [m for m in default_metrics(data.train) if m != "kid"]
    if "modes" not in names and "prdc" not in names:
        names.append("prdc")
    if data.train.kind == "image" and data.held_out() is not None:
        names.append("memorization")
    return names


def measure(recipe: Recipe, G: nn.Module, data: RunData, names: list[str], n: int, seed: int, *,
            draw_seed: int | None = None, features: str | None = None, inception_weights: str | None = None,
            shards: Shards | None = None) -> dict | None:
    """The run's metrics for generator ``G`` (put in eval mode for the measurement, then back): see
    :meth:`ganforge.recipes.base.Recipe.measure` for the arguments; None on DDP ranks other than 0."""
    was_training = G.training
    G.eval()
    try:
        return recipe.measure(G, data, names, n, seed, draw_seed=draw_seed, features=features,
                              inception_weights=inception_weights, shards=shards)
    finally:
        G.train(was_training)
