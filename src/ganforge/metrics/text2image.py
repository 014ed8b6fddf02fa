"""Does the picture show what the caption says? Text-to-image measures for a trained generator.

For captions of seen images (the training set) and of held-out ones (``shapes``' test split: colour-shape
pairs training never shows), one picture per caption is drawn and measured three ways:

- ``scene_*`` (``shapes`` only): the share of pictures whose every attribute - and each of count,
  colour, shape, size, relation - the deterministic parser (:mod:`.scenes`) reads as the caption says;
- ``r_precision``: retrieval with the run's own image-text encoders (AttnGAN's R-precision): the
  share of pictures whose caption scores highest among it and 99 captions that say something
  else; ``r_precision_real`` is the same for the real pictures of those captions, its ceiling;
- ``fd_encoder``: the Frechet distance between generated and real pictures in the image encoder's
  feature space (before its normalisation).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ..data import Dataset
from ..data.shapes import INVERSE
from ..inference.drawing import synthesize
from .frechet import frechet_distance
from .scenes import scene_accuracy

DISTRACTORS = 99


def meaning_key(m: dict) -> tuple:
    """What a caption says, up to word order and sizes: its colour-shape pairs and, for two, the relation
    read from the first colour (alphabetically) to the second."""
    things = [(t["color"], t["shape"]) for t in m["things"]]
    rel = m["relation"]
    if rel is not None and things[0] > things[1]:
        things, rel = things[::-1], INVERSE[rel]
    return tuple(things), rel


@torch.no_grad()
def r_precision(G: nn.Module, images: torch.Tensor, tokens: torch.Tensor, keys: list, seed: int = 0) -> float:
    """Share of ``images`` (model space) whose own caption ``tokens[i]`` outscores ``DISTRACTORS`` captions of
    the set that say something else (``keys`` differ)."""
    img, txt = G.image(images), G.text(tokens)  # unit vectors [n, D]
    rng, n, hits = np.random.default_rng(seed), len(images), 0
    for i in range(n):
        others = np.array([j for j in range(n) if keys[j] != keys[i]])
        if len(others) < DISTRACTORS:
            raise ValueError(f"R-precision needs {DISTRACTORS} captions unlike each one; {len(others)} here")
        cand = torch.as_tensor(np.concatenate([[i], rng.choice(others, DISTRACTORS, replace=False)]))
        hits += int((txt[cand] @ img[i]).argmax() == 0)
    return hits / n


@torch.no_grad()
def encoder_features(G: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([G.image.out(G.image.features(x)) for x in images.split(500)])


@torch.no_grad()
def text_metrics(recipe, G: nn.Module, sets: dict[str, Dataset], n: int = 500, seed: int = 0) -> dict[str, float]:
    """The measures above for each named captioned set (``{"seen": train, "held_out": test}``), ``n`` captions
    of each (its images' first captions), as ``{"seen/scene_all": ..., "held_out/r_precision": ...}``."""
    device = next(G.parameters()).device
    out: dict[str, float] = {}
    for name, data in sets.items():
        if data is None or data.captions is None:
            continue
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
        captions = [data.captions[i][0] for i in pick.tolist()]
        meanings = [data.info["meanings"][i][0] for i in pick.tolist()] if "meanings" in data.info else None
        tokens = recipe.vocab.encode(captions).to(device)
        z = recipe.latent(len(pick), torch.Generator(device).manual_seed(seed + 1), device)
        fake = synthesize(recipe, G, data.spec(), z, tokens)  # data space
        real = data.x[pick]
        if meanings is not None:
            out.update({f"{name}/scene_{k}": v for k, v in scene_accuracy(fake, meanings).items()})
        keys = [meaning_key(m) for m in meanings] if meanings is not None else captions
        fake, real = data.to_model(fake).to(device), data.to_model(real).to(device)
        if len(pick) > DISTRACTORS:
            out[f"{name}/r_precision"] = r_precision(G, fake, tokens, keys, seed)
            out[f"{name}/r_precision_real"] = r_precision(G, real, tokens, keys, seed)
        out[f"{name}/fd_encoder"] = frechet_distance(encoder_features(G, fake).cpu(), encoder_features(G, real).cpu())
    return out
