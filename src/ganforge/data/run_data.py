"""A run's data as its measures see it: what it trained on, the real images it never saw, and the
reference distribution (the whole training split, even when the run trained on a fraction of it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import DataRequest, Dataset, load_dataset, load_training_set


@dataclass
class RunData:
    """``train``: the run's training set. ``held_out()``: its test split (or the rest of a fraction), None when
    the data has none; ``reference()``: the whole training split. Both are read once, when first asked for."""

    train: Dataset
    request: DataRequest
    spec: str  # the dataset name
    fraction: float = 1.0
    seed: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, cfg: Any, data: str | None = None) -> RunData:
        """The data of a run configured by ``cfg`` (a TrainConfig), or of ``data`` at the run's resolution."""
        request = DataRequest(cfg.resolution, cfg.channels, cfg.data_root, "train", cfg.seed)
        spec = data or cfg.data
        train = load_training_set(spec, request, cfg.data_fraction, cfg.seed, held_out=False)[0]
        return cls(train, request, spec, cfg.data_fraction, cfg.seed)

    def held_out(self) -> Dataset | None:
        if "held_out" not in self._cache:
            self._cache["held_out"] = load_training_set(self.spec, self.request, self.fraction, self.seed)[1]
        return self._cache["held_out"]

    def reference(self) -> Dataset:
        if self.fraction >= 1:
            return self.train
        if "reference" not in self._cache:
            self._cache["reference"] = load_dataset(self.spec, self.request)
        return self._cache["reference"]
