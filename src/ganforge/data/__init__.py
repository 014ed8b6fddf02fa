"""Datasets by name: ``load_dataset("digits")``, ``DATASETS.list()``."""
from ..registry import import_all
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

import_all(__name__, __path__)  # every data source registers itself

__all__ = ["DATASETS", "DataRequest", "Dataset", "DataSpec", "InfiniteSampler", "load_dataset", "load_training_set",
           "split_indices"]
