"""Losses and regularizers: pure functions, shared by every recipe."""
from .adversarial import LOSSES, AdversarialLoss, get_loss

__all__ = ["LOSSES", "AdversarialLoss", "get_loss"]
