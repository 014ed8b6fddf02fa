"""Datasets by name: ``load_dataset("digits")``, ``DATASETS.list()``."""
from . import digits, faces, folder, shapes, stacked_digits, superres, torchvision_sets, toy2d, translation  # noqa: F401, I001
from .base import (
                   DATASETS,
                   DataRequest,
                   Dataset,
                   DataSpec,
                   InfiniteSampler,
                   load_dataset,
                   load_training_set,
                   split_indices,
)

__all__ = ["DATASETS", "DataRequest", "Dataset", "DataSpec", "InfiniteSampler", "load_dataset", "load_training_set",
           "split_indices"]
