"""Exponential moving average of the generator (Karras et al.), with a half-life in images."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from ..config import EMAConfig


class EMA:
    def __init__(self, net: nn.Module, cfg: EMAConfig) -> None:
        self.cfg = cfg
        self.model = copy.deepcopy(net).eval().requires_grad_(False)

    def beta(self, images_seen: int, batch: int) -> float:
        """0.5 ** (batch / half_life): the average forgets half of itself every half-life."""
        half_life = self.cfg.kimg * 1000
        if self.cfg.rampup > 0:
            half_life = min(half_life, images_seen * self.cfg.rampup)
        return 0.5 ** (batch / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, net: nn.Module, images_seen: int, batch: int) -> None:
        beta = self.beta(images_seen, batch)
        ema_p = list(self.model.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in net.parameters()], 1 - beta)
        for b_ema, b in zip(self.model.buffers(), net.buffers()):
            b_ema.copy_(b)  # batch-norm statistics follow the live network
