"""The denoiser of the diffusion recipe: diffusers' ``UNet2DModel`` sized for small images.

``widths`` are the channels per resolution level (each level after the first halves the side),
``attention`` marks the levels with self-attention, ``layers`` the residual blocks per level;
``num_classes`` > 0 adds a class embedding to the timestep embedding (class conditioning).
diffusers is imported when a model is built, so the rest of ganforge starts without it.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..extras import require


class DenoisingUNet(nn.Module):
    """eps_theta(x_t, t[, y]): predicts the noise in x_t. [N, C, H, W], [N] -> [N, C, H, W]."""

    def __init__(self, resolution: int, channels: int, widths: list[int], attention: list[bool], layers: int = 1,
                 num_classes: int = 0) -> None:
        super().__init__()
        UNet2DModel = require("diffusers", "the diffusion model").UNet2DModel

        self.num_classes = num_classes
        self.unet = UNet2DModel(
            sample_size=resolution, in_channels=channels, out_channels=channels, block_out_channels=tuple(widths),
            down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
            up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
            layers_per_block=layers, norm_num_groups=8, attention_head_dim=8,
            num_class_embeds=num_classes or None)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.unet(x, t, class_labels=labels if self.num_classes else None).sample
