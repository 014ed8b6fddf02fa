"""Training batches on the device, whatever the data holds: images (and labels), a second domain, captions.

The whole training set lives on the device in model space; a batch is an index into it. Every DDP
rank draws the same global batch order and keeps its slice, so W processes with batch B/W see what
one process with batch B sees. The trainer draws through :class:`BatchSource` and never asks what
kind of data (or of method) it trains.
"""
from __future__ import annotations

import torch

from ..text import Vocabulary, caption_tokens
from .base import Dataset, InfiniteSampler


class BatchSource:
    """``real()`` -> ``(x, y)`` of this rank; ``real_b()`` -> domain B's batch: the partners of the latest
    ``real()`` batch when paired, an independent batch otherwise (None-valued attribute when one domain).

    ``y`` is the labels, or for captioned data the token ids of the captions (every caption of an image, the
    recipe picks one). The sampler states are saved with each checkpoint, so a resumed run draws on exactly.
    """

    def __init__(self, data: Dataset, device: torch.device, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, channels_last: bool = False) -> None:
        self.batch = batch_size // world_size  # per process
        self.rank = rank
        self.x = data.to_model(data.x).to(device)
        if channels_last and self.x.dim() == 4:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = None if data.y is None else data.y.to(device)
        if data.captions is not None:
            self.y = caption_tokens(data.captions, Vocabulary(data.spec().vocab)).to(device)
        self.sampler = InfiniteSampler(len(data), batch_size, seed=seed * 1000)
        self.x_b = None if data.x_b is None else data.to_model(data.x_b).to(device)
        self.sampler_b = (InfiniteSampler(len(data.x_b), batch_size, seed=seed * 1000 + 1)
                          if self.x_b is not None and not data.paired else None)
        self.last_idx: torch.Tensor | None = None

    @property
    def two_domains(self) -> bool:
        return self.x_b is not None

    def _mine(self, idx: torch.Tensor) -> torch.Tensor:
        return idx[self.rank * self.batch : (self.rank + 1) * self.batch].to(self.x.device)

    def real(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = self._mine(self.sampler.next())
        self.last_idx = idx
        return self.x[idx], None if self.y is None else self.y[idx]

    def real_b(self) -> torch.Tensor:
        if self.sampler_b is None:
            return self.x_b[self.last_idx]
        return self.x_b[self._mine(self.sampler_b.next())]

    def state_dict(self) -> dict:
        return {"sampler": self.sampler.state_dict(),
                **({"sampler_b": self.sampler_b.state_dict()} if self.sampler_b is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state["sampler"])
        if self.sampler_b is not None:
            self.sampler_b.load_state_dict(state["sampler_b"])
