"""A perceptual distance between images from networks that ship with ganforge (no downloaded VGG).

LPIPS (Zhang et al. 2018) compares images by their activations in several layers of a fixed network,
each unit-normalised across channels, squared differences summed over channels and averaged over
positions; without LPIPS's learned channel weights this is its "baseline" form, which the paper
finds already far closer to human judgement than pixel distances. The network here is:

* ``digits``: the four convolution blocks of ganforge's shipped digits classifier (grey, 16 x 16), for
  data the classifier was trained on;
* ``random-cnn``: the fixed-seed, never-trained convolution net of the metrics, at the image's own size
  (random convolutional features keep edges and local texture, which is what projection has to match).

Used by projection (:mod:`ganforge.inference.inversion`) as its loss and as a reported distance.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import DataSpec

Tensor = torch.Tensor


def _unit(x: Tensor) -> Tensor:
    return x / (x.square().sum(1, keepdim=True) + 1e-10).sqrt()


class PerceptualDistance(nn.Module):
    """``d(a, b) -> [N]`` for images ``[N, C, H, W]`` in [0, 1] (differentiable in ``a``)."""

    def __init__(self, name: str, describe: str) -> None:
        super().__init__()
        self.name, self.describe = name, describe

    def activations(self, x: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.towards(b)(a)

    def towards(self, targets: Tensor) -> Callable[[Tensor], Tensor]:
        """The distance to fixed ``targets`` as a function of images ``[N, C, H, W]`` (differentiable), the
        targets' activations computed once: what projection calls at every step."""
        with torch.no_grad():
            fixed = [_unit(f) for f in self.activations(targets)]

        def distance(a: Tensor) -> Tensor:
            total = torch.zeros(len(a), device=a.device)
            for fa, fb in zip(self.activations(a), fixed):
                total = total + (_unit(fa) - fb).square().sum(1).mean((1, 2))
            return total

        return distance


class DigitsPerceptual(PerceptualDistance):
    def __init__(self) -> None:
        from ..metrics.digits_classifier import load_digits_classifier, to_classifier_input

        super().__init__("digits", "LPIPS-style distance (unit-normalised activations, no learned weights) in the "
                                   "4 convolution blocks of ganforge's digits classifier, grey 16x16")
        net = load_digits_classifier()
        self.blocks = nn.ModuleList([m for m in net.body if isinstance(m, (nn.Sequential, nn.MaxPool2d))]).eval()
        self.prepare = to_classifier_input
        self.requires_grad_(False)

    def activations(self, x: Tensor) -> list[Tensor]:
        x = self.prepare(x) * 2 - 1
        out = []
        for m in self.blocks:
            x = m(x)
            if isinstance(m, nn.Sequential):
                out.append(x)
        return out


class RandomCNNPerceptual(PerceptualDistance):
    def __init__(self) -> None:
        from ..metrics.features import RANDOM_CNN_SEED, _RandomCNN

        super().__init__("random-cnn", "LPIPS-style distance (unit-normalised activations, no learned weights) in "
                                       f"the 4 layers of the fixed-seed (seed {RANDOM_CNN_SEED}) never-trained "
                                       "conv net of the metrics, at the image's own size (at least 16 px)")
        self.net = _RandomCNN(RANDOM_CNN_SEED)

    def activations(self, x: Tensor) -> list[Tensor]:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        if x.shape[-1] < 16:
            x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
        return self.net.activations(x * 2 - 1)


def perceptual_for(spec: DataSpec) -> PerceptualDistance:
    """The distance for a run's data: the digits classifier's blocks for the digits, the random CNN otherwise."""
    from ..metrics.evaluate import CLASSIFIER_DATASETS

    return DigitsPerceptual() if spec.name in CLASSIFIER_DATASETS and spec.num_classes == 10 else \
        RandomCNNPerceptual()
