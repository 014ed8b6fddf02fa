"""ganforge: Generative Adversarial Networks in PyTorch - one engine, one CLI, one metrics suite."""
from __future__ import annotations

from .api import Generator, list_datasets, list_recipes, load, train  # noqa: E402
from .evaluation import evaluate  # noqa: E402
from .version import __version__

__all__ = ["Generator", "__version__", "evaluate", "list_datasets", "list_recipes", "load", "train"]
