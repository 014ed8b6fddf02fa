"""The public Python API: ``train``, ``load``, ``list_recipes``, ``list_datasets``.

``load(run)`` gives the pipeline its recipe names (:mod:`ganforge.inference.pipelines`): a
:class:`Generator` (sample from noise), a :class:`Translator` (translate images) or an
:class:`Upscaler` (upscale images).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig
from .data import DATASETS
from .inference.pipelines import Generator, Pipeline, Translator, Upscaler
from .recipes import RECIPES, build_recipe, resolve
from .runs import checkpoint as ck
from .runs.rundir import read_run
from .train.trainer import train as _train  # at import: the name ``ganforge.train`` stays this module's function


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
    if resume is not None:
        _, cfg, _ = read_run(resume)
        if isinstance(config, TrainConfig):
            cfg.steps = config.steps
        elif config and "steps" in config:
            cfg.steps = int(config["steps"])
        return _train(cfg, resume=resume, progress=progress, resignal=True)
    cfg = config if isinstance(config, TrainConfig) else resolve(file_values=config or {})
    return _train(cfg, progress=progress, resignal=True)


def load(run_dir: str | Path, ema: bool = True, device: str | torch.device = "cpu",
         checkpoint: str = "latest") -> Pipeline:
    """Load a run's trained network as its recipe's pipeline (:class:`Generator`, :class:`Translator`,
    :class:`Upscaler`): the EMA weights when the run kept them; ``checkpoint="best"`` for the weights
    that scored best during training (``--eval-every``)."""
    run_dir, cfg, spec = read_run(run_dir)
    recipe = build_recipe(cfg, spec)
    nets = ck.split_weights(ck.load_weights(ck.latest_checkpoint(run_dir, checkpoint)))
    return recipe.load_pipeline(nets, run_dir, ema).to(device)


__all__ = ["Generator", "Pipeline", "Translator", "Upscaler", "list_datasets", "list_recipes", "load", "train"]
