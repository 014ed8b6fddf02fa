"""Gradient penalties on the discriminator, as pure functions of (D, samples).

``D`` is any callable from a batch ``[N, ...]`` to logits ``[M]`` with ``M`` dividing ``N``: the
plain discriminator (``M = N``) or one that packs ``k = N / M`` samples per logit (PacGAN), in
which case a pack's squared gradient norm is the sum over its ``k`` members. Everything is
computed in fp32 with autocast off: squared input gradients underflow in bf16/fp16. The
returned penalty keeps its graph (``create_graph``) so the D step can backpropagate through it.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

Tensor = torch.Tensor
Critic = Callable[[Tensor], Tensor]  # [N, ...] -> [M] logits, M dividing N


def _input_grad_sq(D: Critic, x: Tensor) -> Tensor:
    """||grad_x D(x)||^2 per logit ([M]), in fp32."""
    with torch.autocast(x.device.type, enabled=False):
        x = x.detach().float().requires_grad_(True)
        out = D(x).float()
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).view(out.numel(), -1).sum(1)


def r1_penalty(D: Critic, real: Tensor) -> Tensor:
    """Mescheder et al. 2018: R1 = E_x~data ||grad_x D(x)||^2; the recipe adds gamma/2 * R1.

    Pushes D's gradient to zero on the data, which makes the game converge locally."""
    return _input_grad_sq(D, real).mean()


def r2_penalty(D: Critic, fake: Tensor) -> Tensor:
    """Mescheder et al. 2018: R2 = E_z ||grad_x D(G(z))||^2, R1 on generated samples (detached from G)."""
    return _input_grad_sq(D, fake).mean()


def gradient_penalty(D: Critic, real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    """Gulrajani et al. 2017 (WGAN-GP): E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = eps*x + (1-eps)*G(z).

    ``eps`` ([N], uniform in [0, 1]) is drawn by the caller, so the function stays pure and the
    draw comes from the trainer's generator. A two-sided penalty keeps the critic 1-Lipschitz
    along the lines between data and samples, where the optimal critic has gradient norm 1.
    """
    e = eps.to(torch.float32).view(-1, *[1] * (real.dim() - 1))
    x_hat = e * real.detach().float() + (1 - e) * fake.detach().float()
    norm = _input_grad_sq(D, x_hat).add(1e-12).sqrt()  # the epsilon keeps sqrt differentiable at 0
    return (norm - 1).pow(2).mean()
