"""A convolutional VAE (Kingma & Welling 2014) on the DCGAN backbones, so it is sized like the GAN.

The encoder is the DCGAN discriminator with its last 4x4 convolution giving ``2 * z_dim`` numbers
(the posterior's mean and log-variance) instead of one logit; the decoder is the DCGAN generator
without its output tanh, so it returns the likelihood's raw parameter: Bernoulli logits, or the
Gaussian mean before tanh. For the Gaussian likelihood the decoder also holds ``log_sigma``, one
learned scalar standard deviation in model space (the "sigma-VAE" of Rybkin et al. 2021), which
balances reconstruction against KL without a hand-tuned weight.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .dcgan import DCGANDiscriminator, DCGANGenerator

LIKELIHOODS = ("bernoulli", "gaussian")


class ConvVAE(nn.Module):
    def __init__(self, z_dim: int, resolution: int, channels: int, width: int = 64, max_channels: int = 512,
                 upsample: str = "transpose", likelihood: str = "bernoulli", sigma: float = 0.0) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood {likelihood!r}; expected one of {LIKELIHOODS}")
        self.z_dim, self.likelihood = z_dim, likelihood
        self.encoder = DCGANDiscriminator(resolution, channels, width, max_channels)
        last = self.encoder.net[-1]
        self.encoder.net[-1] = nn.Conv2d(last.in_channels, 2 * z_dim, 4, 1, 0)
        self.decoder = DCGANGenerator(z_dim, resolution, channels, width, max_channels, upsample)
        self.decoder.net[-1] = nn.Identity()  # the raw likelihood parameter, not tanh
        # Gaussian: log sigma learned (sigma=0, a parameter) or fixed (a buffer); unused for Bernoulli
        log_sigma = torch.tensor(sigma).log() if sigma > 0 else torch.zeros(())
        if likelihood == "gaussian" and sigma <= 0:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in model space [-1, 1] -> posterior mean and log-variance, each [N, z_dim]."""
        mu, logvar = self.encoder(x).view(len(x), 2, self.z_dim).unbind(1)
        return mu, logvar.clamp(-30, 20)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def mean(self, raw: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean in model space [-1, 1] (what a sample image shows)."""
        return torch.sigmoid(raw) * 2 - 1 if self.likelihood == "bernoulli" else torch.tanh(raw)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, C, R, R] in [-1, 1]
        return self.mean(self.decode_raw(z))
