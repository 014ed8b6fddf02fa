"""Meaningful directions in a trained generator's latent space, and edits along them.

* **Class directions** (attribute vectors, Radford et al. 2016; White 2016): latents are drawn, each labelled
  by the class it was generated for (conditional generators) or by ganforge's classifier for the data
  (unconditional generators on data that has one: the digits); a class's direction is its mean latent minus
  the mean of all, and strength 1 moves by that whole difference. (InterFaceGAN's linear-boundary normals
  were measured too and turned fewer digits into the target class at any strength: benchmarks/RESULTS.md.)
* **Principal directions** (GANSpace, Haerkoenen et al. 2020): the principal components of w for
  style-based generators; for generators without w, the principal components of the generated images,
  carried back to z by least squares (GANSpace's recipe for BigGAN, with the images as features).

Latent spaces: w for style-based generators (an edit moves every layer's w, or only ``layers``), z
otherwise (a categorical code, where there is one, is left alone). A direction's ``unit`` is how far strength
1 moves: a class's mean offset, or a principal direction's standard deviation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..data import DataSpec
from ..errors import GanforgeError
from . import Recipe
from .control import layer_range
from .inversion import check_projectable

Tensor = torch.Tensor

SAMPLES = 4000  # latents drawn to find the directions
COMPONENTS = 10  # principal directions listed


@dataclass
class Direction:
    name: str  # "class-3", "pc0"
    kind: str  # "class" or "principal"
    space: str  # "w" or "z"
    vector: Tensor  # unit vector in the space (z: the continuous part, flattened)
    unit: float  # how far strength 1 moves: the class's mean offset, the component's standard deviation
    describe: str

    def info(self) -> dict:
        return {"name": self.name, "kind": self.kind, "space": self.space, "unit": round(self.unit, 5),
                "describe": self.describe}


def _class_labels(recipe: Recipe, G: nn.Module, spec: DataSpec, z: Tensor, labels: Tensor | None) -> Tensor | None:
    """The class of every drawn latent: its conditioning label, or the data's classifier's reading."""
    if labels is not None:
        return labels.cpu()
    from ..metrics.evaluate import CLASSIFIER_DATASETS

    if spec.name not in CLASSIFIER_DATASETS or spec.num_classes != 10:
        return None
    from ..metrics.digits_classifier import classify
    from .drawing import synthesize

    logits, _ = classify(synthesize(recipe, G, spec, z, None))
    return logits.argmax(1)


def _class_vectors(x: Tensor, y: Tensor, names: list[str], space: str) -> list[Direction]:
    """Per class: the mean latent of the class minus the mean of all (strength 1 moves by that difference)."""
    out = []
    mean = x.mean(0)
    for c, name in enumerate(names):
        inside = y == c
        if int(inside.sum()) < 10:
            continue
        v = x[inside].mean(0) - mean
        out.append(Direction(f"class-{name}", "class", space, v / v.norm(), float(v.norm()),
                             f"towards class {name}: the class's mean latent minus the mean of all"))
    return out


def _principal(x: Tensor, space: str, features: Tensor | None = None) -> list[Direction]:
    """Principal components of ``x`` (or of ``features``, carried back to ``x`` by least squares)."""
    k = min(COMPONENTS, x.shape[1])
    base = x if features is None else features
    centred = base - base.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    out = []
    total = float(s.square().sum())
    for i in range(k):
        if features is None:
            v = vh[i]
        else:  # the z direction whose linear prediction of the component's score is best
            scores = centred @ vh[i]
            v = torch.linalg.lstsq(x - x.mean(0), scores[:, None]).solution[:, 0]
        v = v / v.norm()
        share = float(s[i].square()) / total
        what = "of w" if features is None else "of the images, in z"
        out.append(Direction(f"pc{i}", "principal", space, v, float((x @ v).std()),
                             f"principal component {i} {what} ({share:.0%} of the variance)"))
    return out


@torch.no_grad()
def find_directions(recipe: Recipe, G: nn.Module, spec: DataSpec, seed: int = 0,
                    samples: int = SAMPLES) -> list[Direction]:
    """Class directions (where labels exist) then principal directions, for a trained generator."""
    from .drawing import latents, synthesize

    space = "w" if recipe.has_styles else "z"
    check_projectable(recipe, spec, space)
    device = next(G.parameters()).device
    z, labels = latents(recipe, spec, samples, seed, None, None, device)
    if recipe.has_styles:
        x = G.w(z, labels if recipe.conditional else None).float().cpu()
        features = None
    else:
        x = z[:, recipe.one_hot_code:].flatten(1).float().cpu()
        features = synthesize(recipe, G, spec, z, labels).flatten(1)
    # a conditional generator without w takes its class as an input, not in z: edit it with --label
    has_classes = recipe.has_styles or not recipe.conditional
    classes = _class_labels(recipe, G, spec, z, labels if recipe.conditional else None) if has_classes else None
    names = list(spec.class_names) or [str(i) for i in range(spec.num_classes)]
    found = _class_vectors(x, classes, names, space) if classes is not None else []
    return found + _principal(x, space, features)


def direction_named(found: list[Direction], name: str) -> Direction:
    for d in found:
        if d.name == name:
            return d
    raise GanforgeError(f"--direction {name!r} is not one of this run's directions: "
                        f"{', '.join(d.name for d in found)} (ganforge directions RUN shows them)")


def parse_strengths(text: str) -> list[float]:
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(abs(v) < 1e6 for v in values):
        raise GanforgeError(f"--strength {text!r}: expected numbers separated by commas, such as -2,0,2 (class "
                            "directions: multiples of the class's mean offset; pcN: standard deviations)")
    return values


def edit_latents(G: nn.Module, latent: Tensor, direction: Direction, strengths: list[float], code: int = 0,
                 layers: str | None = None) -> Tensor:
    """``latent`` (one w ``[1 | num_ws, w_dim]`` or one z) moved by each strength: ``[S, *latent.shape]``.
    In w, ``layers`` (coarse, middle, fine, A-B, a,b,c) limits the edit to those layers' styles."""
    moved = []
    v = direction.vector.to(latent.device, latent.dtype)
    for a in strengths:
        step = a * direction.unit * v
        if direction.space == "w":
            w = latent.expand(G.num_ws, -1).clone() if layers is not None else latent.clone()
            rows = layer_range(layers, G.num_ws) if layers is not None else list(range(len(w)))
            w[rows] = w[rows] + step
            moved.append(w)
        else:
            flat = latent.flatten().clone()
            flat[code:] = flat[code:] + step
            moved.append(flat.view(latent.shape))
    return torch.stack(moved)
