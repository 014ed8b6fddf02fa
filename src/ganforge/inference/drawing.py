"""Drawing samples from a generator network: labels, latents, batched forward passes.

The one implementation under both the public face (``ganforge.load(run).sample``) and the
training core (evaluation during training, the final measurement), so both draw the same
samples for the same seed and neither imports the other.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..data import DataSpec
from ..errors import GanforgeError
from . import Recipe


def labels_for(recipe: Recipe, spec: DataSpec, n: int, labels: torch.Tensor | int | str | list[str] | None,
               gen: torch.Generator, device: torch.device) -> torch.Tensor | None:
    """The labels a draw of ``n`` will use: as given, else uniform over classes (in ``spec.class_prior``'s
    proportions when the spec has one); None if unconditional.
    For text-to-image they are token ids, from prompts (see ``TextToImage.prompt_tokens``)."""
    if recipe.texts:
        return recipe.prompt_tokens(n, labels, gen, device)
    if not recipe.conditional:
        if labels is not None:
            raise GanforgeError(f"this {recipe.cfg.recipe} generator is unconditional; --label is not allowed")
        return None
    k = spec.num_classes
    if labels is None and spec.class_prior:  # in the data's proportions
        prior = torch.tensor(spec.class_prior, dtype=torch.float64, device=device)
        return torch.multinomial(prior, n, replacement=True, generator=gen)
    if labels is None:
        return torch.randint(k, (n,), generator=gen, device=device)
    labels = torch.as_tensor(labels, device=device).long().expand(n) if not torch.is_tensor(labels) or \
        labels.dim() == 0 else labels.to(device).long()
    if labels.min() < 0 or labels.max() >= k:
        raise GanforgeError(f"label {int(labels.max())} is out of range; allowed 0..{k - 1} "
                            f"({', '.join(spec.class_names)})")
    return labels


@torch.no_grad()
def synthesize(recipe: Recipe, G: nn.Module, spec: DataSpec, z: torch.Tensor, labels: torch.Tensor | None = None,
               batch_size: int = 500, truncation: float | None = None) -> torch.Tensor:
    """Samples in data space from given latents, ``batch_size`` at a time."""
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(z), batch_size):
        part = None if labels is None else labels[i : i + batch_size]
        x = recipe.generate(G, z[i : i + batch_size].to(device), labels=part, truncation=truncation)
        out.append(spec.from_model(x.float()).cpu())
    return torch.cat(out)


@torch.no_grad()
def sample(recipe: Recipe, G: nn.Module, spec: DataSpec, n: int, seed: int | None = None,
           labels: torch.Tensor | int | None = None, truncation: float | None = None,
           batch_size: int = 500) -> torch.Tensor:
    """``n`` samples in data space; ``seed`` makes the draw reproducible, and the same as every other command
    draws for that seed (:func:`latents`)."""
    device = next(G.parameters()).device
    seed = seed if seed is not None else int(torch.randint(2**62, ()).item())
    z, labels = latents(recipe, spec, n, seed, labels, truncation, device)
    return synthesize(recipe, G, spec, z, labels, batch_size, truncation)


def latents(recipe: Recipe, spec: DataSpec, n: int, seed: int, label: torch.Tensor | int | None = None,
            truncation: float | None = None, device: torch.device | str = "cpu") -> tuple[torch.Tensor,
                                                                                          torch.Tensor | None]:
    """The latents and labels of draw ``seed``: ``n`` codes and labels (None when unconditional), each from
    its own generator seeded with ``seed``. The one definition of what a seed means: ``sample``, ``draw``,
    the grids of ``interpolate`` and ``mix``, ``serve`` and the demo all draw through it, so a seed gives the
    same image everywhere (and batched requests match single ones)."""
    if n < 1:
        raise GanforgeError(f"n={n} is not allowed; expected an integer >= 1")
    device = torch.device(device)
    labels = labels_for(recipe, spec, n, label, torch.Generator(device).manual_seed(seed), device)
    return recipe.latent(n, torch.Generator(device).manual_seed(seed), device, truncation), labels


def draw(recipe: Recipe, G: nn.Module, spec: DataSpec, n: int, seed: int, label: torch.Tensor | int | None = None,
         truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples and the labels they were drawn for (None when unconditional)."""
    z, labels = latents(recipe, spec, n, seed, label, truncation, next(G.parameters()).device)
    return synthesize(recipe, G, spec, z, labels, truncation=truncation), labels
