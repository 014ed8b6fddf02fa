"""Adversarial objectives as pure functions of discriminator logits.

Each loss is a pair: ``d(real_logits, fake_logits)`` minimised by the discriminator and
``g(fake_logits)`` minimised by the generator. Means over the batch.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..registry import Registry

Tensor = torch.Tensor


@dataclass(frozen=True)
class AdversarialLoss:
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]


LOSSES: Registry[AdversarialLoss] = Registry("loss")


def _bce_d(real: Tensor, fake: Tensor) -> Tensor:
    # -log D(x) - log(1 - D(G(z))) with D = sigmoid(logit): softplus(-r) + softplus(f)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


@LOSSES.register("minimax")
def minimax() -> AdversarialLoss:
    """Goodfellow et al. 2014: G minimises log(1 - D(G(z))), which saturates early on."""
    return AdversarialLoss(_bce_d, lambda fake: -F.softplus(fake).mean())


@LOSSES.register("nonsaturating")
def nonsaturating() -> AdversarialLoss:
    """Goodfellow et al. 2014's practical variant: G maximises log D(G(z))."""
    return AdversarialLoss(_bce_d, lambda fake: F.softplus(-fake).mean())


def get_loss(name: str) -> AdversarialLoss:
    return LOSSES.create(name)
