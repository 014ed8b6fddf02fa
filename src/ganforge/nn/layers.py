"""Small building blocks shared by several model families."""
from __future__ import annotations

import math

import torch.nn as nn

from ..errors import ConfigError


def dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2015: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def log2_resolution(resolution: int, low: int = 8, high: int = 1024) -> int:
    """log2 of a power-of-two resolution in [low, high]; anything else is a ConfigError."""
    n = int(math.log2(resolution)) if resolution > 0 else 0
    if 2**n != resolution or not low <= resolution <= high:
        raise ConfigError(f"resolution={resolution} is not allowed for this model; expected a power of two "
                          f"from {low} to {high}")
    return n
