"""Adversarial objectives as pure functions of discriminator logits.

Each loss is a pair: ``d(real_logits, fake_logits)`` minimised by the discriminator and
``g(fake_logits)`` minimised by the generator; means over the batch. A loss whose generator
side compares against real samples too (relativistic ones) sets ``g_uses_real`` and is called
``g(fake_logits, real_logits)``; the recipe pays for the extra D forward on reals only then.
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
    g: Callable[..., Tensor]  # g(fake_logits), or g(fake_logits, real_logits) when g_uses_real
    g_uses_real: bool = False
    boundary: float = 0.0  # D's output between "real" and "fake" (LSGAN's targets are 1 and 0: 0.5)


LOSSES: Registry[AdversarialLoss] = Registry("loss")


def _bce_d(real: Tensor, fake: Tensor) -> Tensor:
    # -log D(x) - log(1 - D(G(z))) with D = sigmoid(logit): softplus(-r) + softplus(f)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


@LOSSES.register("minimax")
def minimax() -> AdversarialLoss:
    """Goodfellow et al. 2014: G minimises log(1 - D(G(z))), which saturates early on."""
    # log(1 - sigmoid(f)) = -softplus(f)
    return AdversarialLoss(_bce_d, lambda fake: -F.softplus(fake).mean())


@LOSSES.register("nonsaturating")
def nonsaturating() -> AdversarialLoss:
    """Goodfellow et al. 2014's practical variant: G maximises log D(G(z))."""
    # -log sigmoid(f) = softplus(-f)
    return AdversarialLoss(_bce_d, lambda fake: F.softplus(-fake).mean())


@LOSSES.register("hinge")
def hinge() -> AdversarialLoss:
    """Lim & Ye 2017 / SAGAN: a margin for D, so confident logits stop pulling on it."""
    # D: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))];  G: -E[D(G(z))]
    return AdversarialLoss(lambda real, fake: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
                           lambda fake: -fake.mean())


@LOSSES.register("wasserstein")
def wasserstein() -> AdversarialLoss:
    """Arjovsky et al. 2017: D is a critic estimating W1; it needs a Lipschitz constraint (reg.gp or
    reg.spectral_norm), else its logits grow without bound."""
    # D: E[D(G(z))] - E[D(x)];  G: -E[D(G(z))]
    return AdversarialLoss(lambda real, fake: fake.mean() - real.mean(), lambda fake: -fake.mean())


@LOSSES.register("lsgan")
def lsgan() -> AdversarialLoss:
    """Mao et al. 2017 (a=0, b=1, c=1): least squares, so samples far on the right side still get a gradient."""
    # D: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2];  G: 1/2 E[(D(G(z)) - 1)^2]
    return AdversarialLoss(lambda real, fake: 0.5 * (real - 1).pow(2).mean() + 0.5 * fake.pow(2).mean(),
                           lambda fake: 0.5 * (fake - 1).pow(2).mean(), boundary=0.5)


def _ragan(pos: Tensor, neg: Tensor) -> Tensor:
    # -E_pos[log sigmoid(C(pos) - E C(neg))] - E_neg[log(1 - sigmoid(C(neg) - E C(pos)))]
    return F.softplus(-(pos - neg.mean())).mean() + F.softplus(neg - pos.mean()).mean()


@LOSSES.register("ragan")
def ragan() -> AdversarialLoss:
    """Jolicoeur-Martineau 2018, relativistic average (non-saturating): D judges whether real data
    is more realistic than the average fake, and G the reverse, so G also pulls on real logits."""
    return AdversarialLoss(_ragan, lambda fake, real: _ragan(fake, real), g_uses_real=True)


def get_loss(name: str) -> AdversarialLoss:
    return LOSSES.create(name)
