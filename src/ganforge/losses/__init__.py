"""Losses and regularizers: pure functions, shared by every recipe."""
from .adversarial import LOSSES, AdversarialLoss, get_loss
from .regularizers import gradient_penalty, r1_penalty, r2_penalty

__all__ = ["LOSSES", "AdversarialLoss", "get_loss", "gradient_penalty", "r1_penalty", "r2_penalty"]
