"""Shared building blocks."""
from .layers import dcgan_init, log2_resolution

__all__ = ["dcgan_init", "log2_resolution"]
