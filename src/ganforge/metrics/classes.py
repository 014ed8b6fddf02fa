"""Class metrics from a classifier's probabilities on generated samples.

For class-structured data a pretrained classifier is a sharper judge than a feature distance
(the idea behind the Inception Score and the "modes" count of stacked-MNIST evaluations):

* ``class_confident``: fraction of samples the classifier is sure about (max prob >= 0.9);
  unrecognisable samples lower it.
* ``classes_present``: number of classes with at least one *confident* sample; a collapsed
  generator misses classes.
* ``class_kl``: KL(generated class histogram || real class distribution),
  ``sum_k p_k log((p_k + eps) / (q_k + eps))`` with ``p`` the argmax histogram of all samples,
  0 when the class balance matches; the eps (1e-10) keeps a class missing from the real
  distribution finite.
* ``label_agreement``: for conditional generators, fraction of samples whose argmax class is
  the label they were requested with.
"""
from __future__ import annotations

import torch

from ..errors import GanforgeError

CONFIDENCE = 0.9
EPS = 1e-10


def class_histogram(probs: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Counts of argmax classes ([K] int64)."""
    k = num_classes or probs.shape[1]
    return torch.bincount(probs.argmax(1), minlength=k)


def class_kl(probs: torch.Tensor, real_distribution: torch.Tensor | None = None, eps: float = EPS) -> float:
    """KL(argmax histogram of ``probs`` || ``real_distribution``) in nats (uniform when not given)."""
    k = probs.shape[1]
    p = class_histogram(probs, k).double()
    p = p / p.sum()
    q = torch.full((k,), 1.0 / k, dtype=torch.float64) if real_distribution is None else (
        real_distribution.double() / real_distribution.double().sum()
    )
    if len(q) != k:
        raise GanforgeError(f"real class distribution has {len(q)} classes, the classifier {k}")
    return float((p * torch.log((p + eps) / (q + eps))).sum())


def class_metrics(
    probs: torch.Tensor,
    real_distribution: torch.Tensor | None = None,
    requested_labels: torch.Tensor | None = None,
    confidence: float = CONFIDENCE,
) -> dict[str, float]:
    """``class_confident``, ``classes_present``, ``class_kl`` and (with labels) ``label_agreement``.

    ``probs``: [N, K] class probabilities (rows sum to 1); ``real_distribution``: [K] class
    frequencies or counts of the real data; ``requested_labels``: [N] labels the samples were
    generated for.
    """
    if probs.dim() != 2 or len(probs) == 0:
        raise GanforgeError(f"class metrics need probabilities [N, K] with N > 0, got {tuple(probs.shape)}")
    probs = probs.detach().double().cpu()
    top, pred = probs.max(1)
    confident = top >= confidence
    out = {
        "class_confident": confident.double().mean().item(),
        "classes_present": int(torch.unique(pred[confident]).numel()),
        "class_kl": class_kl(probs, real_distribution),
    }
    if requested_labels is not None:
        labels = requested_labels.detach().long().cpu().reshape(-1)
        if len(labels) != len(probs):
            raise GanforgeError(f"{len(labels)} requested labels for {len(probs)} samples")
        out["label_agreement"] = (pred == labels).double().mean().item()
    return out
