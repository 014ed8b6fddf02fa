"""FreezeD (Mo et al., "Freeze the Discriminator", 2020): when fine-tuning a GAN on new data, keep the
discriminator's first layers as the source run trained them (generic low-level features) and train the rest."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ConfigError


def weight_layers(net: nn.Module) -> list[nn.Module]:
    """The modules that hold parameters themselves, in the order the network registers them (input first)."""
    return [m for m in net.modules() if any(True for _ in m.parameters(recurse=False))]


def freeze_first_layers(nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                        n: int) -> list[nn.Module]:
    """Take D's first ``n`` weight layers out of its optimizer (their gradients are computed, never applied);
    returns them. Done at every start, fresh or resumed, so the optimizer state always matches its groups."""
    if not n:
        return []
    if "D" not in nets or "D" not in optimizers:
        raise ConfigError(f"freeze_d={n} needs a discriminator; this recipe has none")
    layers = weight_layers(nets["D"])
    if n >= len(layers):
        raise ConfigError(f"freeze_d={n} is not allowed; D has {len(layers)} weight layers: expected 0 to "
                          f"{len(layers) - 1}")
    frozen = {id(p) for m in layers[:n] for p in m.parameters(recurse=False)}
    for group in optimizers["D"].param_groups:
        group["params"] = [p for p in group["params"] if id(p) not in frozen]
    return layers[:n]
