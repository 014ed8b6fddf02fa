"""``shapes``: captioned scenes drawn with Pillow, for text-to-image with answers checkable by program.

A scene holds one or two shapes (circle, square, triangle) in four colours and two sizes on a
plain dark background; two shapes have different colours and stand left/right of or
above/below each other. Each image has five captions from templates with synonyms and both
word orders ("a small red circle above a blue square", "there is a blue square under a little
red circle"); a caption may leave a size out. Every caption comes with its *meaning* (the
objects it names, in the order it names them, and their relation), which
:mod:`ganforge.metrics.scenes` checks generated images against.

Three colour-shape pairs never appear in the training split (:data:`HELD_OUT`: no green
triangle, blue circle or yellow square at all); the ``test`` split holds scenes that contain at
least one of them, so generalisation to new combinations is measured apart from memorisation.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..errors import ConfigError
from .base import DATASETS, DataRequest, Dataset

COLORS = {"red": (230, 50, 50), "green": (50, 190, 70), "blue": (60, 100, 240), "yellow": (240, 220, 50)}
BACKGROUND = (24, 24, 24)
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 8, "big": 13}  # bounding-box side in pixels at 32 px
HELD_OUT = {("green", "triangle"), ("blue", "circle"), ("yellow", "square")}
RELATIONS = ("left", "right", "above", "below")
INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}
RESOLUTIONS = (32, 64)
CAPTIONS_PER_IMAGE = 5
SIZES_PER_SPLIT = {"train": 12_000, "test": 2_000}

SYNONYMS = {
    "small": ("small", "little", "tiny"), "big": ("big", "large"),
    "circle": ("circle", "disc", "ball"), "square": ("square", "box"), "triangle": ("triangle",),
    "left": ("left of", "to the left of", "on the left of"), "right": ("right of", "to the right of",
                                                                     "on the right of"),
    "above": ("above", "over", "on top of"), "below": ("below", "under", "beneath", "underneath"),
}
PAIR_TEMPLATES = ("{a} {rel} {b}", "there is {a} {rel} {b}", "{a} is {rel} {b}", "a picture of {a} {rel} {b}")
SINGLE_TEMPLATES = ("{a}", "there is {a}", "a picture of {a}", "just {a}", "{a} on its own")
# Fixed prompts a run's pictures show with the parser's reading: seen colour-shape pairs, and held-out ones.
PROMPT_EXAMPLES = {"seen": ("a big red circle", "a small green square above a big blue triangle",
                            "a yellow circle left of a red square", "a red triangle right of a blue square"),
                   "held out": ("a big green triangle", "a small blue circle", "a yellow square below a red circle",
                                "a blue circle left of a green triangle")}


@dataclass(frozen=True)
class Thing:
    color: str
    shape: str
    size: str


@dataclass(frozen=True)
class Scene:
    """``things[0] relation things[1]`` (relation None for one thing)."""

    things: tuple[Thing, ...]
    relation: str | None = None


def seen(scene: Scene) -> bool:
    return all((t.color, t.shape) not in HELD_OUT for t in scene.things)


def random_scene(rng: random.Random, held_out: bool | None) -> Scene:
    """A scene of only seen pairs (``held_out=False``), with at least one held-out pair (True), or either (None)."""
    while True:
        n = 1 if rng.random() < 0.3 else 2
        colors = rng.sample(list(COLORS), n)
        things = tuple(Thing(c, rng.choice(SHAPES), rng.choice(list(SIZES))) for c in colors)
        scene = Scene(things, rng.choice(RELATIONS) if n == 2 else None)
        if held_out is None or seen(scene) != held_out:
            return scene


def render(scene: Scene, resolution: int, rng: random.Random, supersample: int = 4) -> np.ndarray:
    """``[H, W, 3]`` uint8: the scene at a random admissible placement, anti-aliased."""
    s, big = resolution / 32, resolution * supersample
    sides = [SIZES[t.size] * s for t in scene.things]
    margin = s
    if len(sides) == 1:
        boxes = [_place_one(sides[0], resolution, margin, rng)]
    else:
        boxes = _place_two(sides, scene.relation, resolution, margin, rng)
    img = Image.new("RGB", (big, big), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for thing, (x, y, side) in zip(scene.things, boxes):
        x0, y0, x1, y1 = (v * supersample for v in (x - side / 2, y - side / 2, x + side / 2, y + side / 2))
        color = COLORS[thing.color]
        if thing.shape == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif thing.shape == "square":
            draw.rectangle((x0, y0, x1, y1), fill=color)
        else:  # pointing up, its base the box's bottom edge
            draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=color)
    return np.asarray(img.resize((resolution, resolution), Image.Resampling.BOX))


def _place_one(side: float, res: int, margin: float, rng: random.Random) -> tuple[float, float, float]:
    lo, hi = side / 2 + margin, res - side / 2 - margin
    return rng.uniform(lo, hi), rng.uniform(lo, hi), side


def _place_two(sides: list[float], relation: str, res: int, margin: float,
               rng: random.Random) -> list[tuple[float, float, float]]:
    """Centres of things[0] and things[1] so that ``things[0] relation things[1]`` holds clearly:
    apart along the relation's axis by their half sides and a gap, within a few pixels across it."""
    a, b = sides
    gap = rng.uniform(2, 4) * res / 32
    first_low = relation in ("left", "above")  # things[0] has the smaller coordinate along the axis
    lo_side, hi_side = (a, b) if first_low else (b, a)
    span = lo_side / 2 + gap + hi_side / 2
    start = rng.uniform(margin + lo_side / 2, max(margin + lo_side / 2, res - margin - hi_side / 2 - span))
    along = (start, start + span) if first_low else (start + span, start)
    across_lo, across_hi = max(a, b) / 2 + margin, res - max(a, b) / 2 - margin
    base = rng.uniform(across_lo, across_hi)
    jitter = 2 * res / 32
    across = [min(max(base + rng.uniform(-jitter, jitter), across_lo), across_hi) for _ in range(2)]
    if relation in ("left", "right"):
        return [(along[0], across[0], a), (along[1], across[1], b)]
    return [(across[0], along[0], a), (across[1], along[1], b)]


def _phrase(thing: Thing, rng: random.Random, with_size: bool) -> str:
    size = f"{rng.choice(SYNONYMS[thing.size])} " if with_size else ""
    return f"a {size}{thing.color} {rng.choice(SYNONYMS[thing.shape])}"


def caption(scene: Scene, rng: random.Random) -> tuple[str, dict]:
    """One caption of the scene and its meaning: ``{"things": [{"color", "shape", "size" or None}, ...],
    "relation": ...}``, things in the order the caption names them (it may name the second first)."""
    sized = [rng.random() < 0.7 for _ in scene.things]
    things = [{"color": t.color, "shape": t.shape, "size": t.size if k else None} for t, k in zip(scene.things, sized)]
    phrases = [_phrase(t, rng, k) for t, k in zip(scene.things, sized)]
    if scene.relation is None:
        return rng.choice(SINGLE_TEMPLATES).format(a=phrases[0]), {"things": things, "relation": None}
    rel, order = scene.relation, [0, 1]
    if rng.random() < 0.5:  # the other word order: "b <inverse> a"
        rel, order = INVERSE[rel], [1, 0]
    text = rng.choice(PAIR_TEMPLATES).format(a=phrases[order[0]], rel=rng.choice(SYNONYMS[rel]), b=phrases[order[1]])
    return text, {"things": [things[i] for i in order], "relation": rel}


def vocabulary() -> list[str]:
    """Every word the templates can write."""
    text = " ".join([*COLORS, *(w for syn in SYNONYMS.values() for w in syn), *PAIR_TEMPLATES, *SINGLE_TEMPLATES, "a"])
    return sorted({w for w in re.sub(r"\{\w+\}", " ", text).split() if w.isalpha()})


def make_scenes(n: int, resolution: int, seed: int, held_out: bool | None,
                captions_per_image: int = CAPTIONS_PER_IMAGE) -> tuple[torch.Tensor, list[list[str]], list[list[dict]]]:
    """``n`` rendered scenes ``[n, 3, R, R]`` in [0, 1], their captions and the captions' meanings."""
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"shapes renders at {' or '.join(map(str, RESOLUTIONS))} px, not {resolution}: "
                          "set --resolution 32 or 64")
    rng = random.Random(seed)
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    captions, meanings = [], []
    for i in range(n):
        scene = random_scene(rng, held_out)
        images[i] = render(scene, resolution, rng)
        pairs = [caption(scene, rng) for _ in range(captions_per_image)]
        captions.append([p[0] for p in pairs])
        meanings.append([p[1] for p in pairs])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, captions, meanings


@DATASETS.register("shapes")
def shapes(request: DataRequest, arg: str = "") -> Dataset:
    """Captioned scenes of one or two coloured shapes (text-to-image); the test split holds out colour-shape
    pairs. ``shapes:N`` sets the number of training scenes (default 12,000).

    The training scenes show seen pairs only; the ``test`` split has a held-out pair in every scene."""
    if arg and not arg.isdigit():
        raise ConfigError(f"shapes:{arg} is not allowed; expected shapes or shapes:N (the number of scenes)")
    split = "test" if request.split == "test" else "train"
    n = int(arg) if arg else SIZES_PER_SPLIT[split]
    if split == "test":
        n = min(n, SIZES_PER_SPLIT["test"])
    x, captions, meanings = make_scenes(n, request.resolution, request.seed + (1 if split == "test" else 0),
                                        held_out=split == "test")
    return Dataset("shapes", x, captions=captions, info={"meanings": meanings, "vocab": vocabulary(),
                                                        "source": "rendered with Pillow",
                                                        "held_out_pairs": sorted(map(list, HELD_OUT)),
                                                        "prompt_examples": {k: list(v) for k, v in
                                                                            PROMPT_EXAMPLES.items()}})
