"""``labels2scenes``: paired semantic label maps -> rendered scenes, a miniature of Cityscapes' labels -> photo.

Each scene is sky over ground, split by a horizon at a random height, with one to three objects
standing on the ground - balls, boxes and cones - nearer ones lower and larger (perspective). The
label map (domain A) colours every pixel by its class alone, with a fixed palette, as Cityscapes' label
images do. The scene (domain B) is rendered with one fixed light from the upper left: skies and ground
darken away from the horizon; balls are shaded as spheres with a highlight; boxes show a lit top, a front
and a darker side face; cones are shaded across their width; every object casts a shadow to its lower
right on the ground. Scenes are drawn 4x larger and box-filtered down (anti-aliased edges).

Nothing in a scene is random given its label map except the anti-aliasing, so the task is learnable;
but what makes a pixel bright or dark (which face of a box, where on a ball, whether a shadow falls
there) depends on its neighbourhood, not on its own label: a per-pixel lookup (the mean colour of each
label in the training scenes, :func:`ganforge.metrics.translation.fit_lut`) paints flat silhouettes and
no shadows. The split is by seed: 4,000 training scenes (seed 0) and 500 held-out ones (seed 1).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from .base import DATASETS, DataRequest, Dataset
from .images import check_resolution, set_channels

CLASSES = ("sky", "ground", "ball", "box", "cone")
PALETTE = np.array([(70, 130, 180), (152, 251, 152), (220, 20, 60), (0, 0, 142), (250, 170, 30)],
                   dtype=np.float32) / 255  # Cityscapes' colours for sky, terrain, person, car, traffic light
SKY_TOP, SKY_HORIZON = np.array([0.16, 0.30, 0.62]), np.array([0.72, 0.82, 0.95])
GROUND_HORIZON, GROUND_NEAR = np.array([0.55, 0.62, 0.38]), np.array([0.25, 0.40, 0.16])
OBJECT_COLOURS = {"ball": np.array([0.85, 0.25, 0.20]), "box": np.array([0.35, 0.45, 0.80]),
                  "cone": np.array([0.95, 0.70, 0.15])}
LIGHT = np.array([-0.5, -0.6, 0.62]) / np.linalg.norm([-0.5, -0.6, 0.62])  # x right, y down, z to the viewer
SHADOW = 0.5  # ground brightness inside a shadow
SUPERSAMPLE = 4
SCENES = {"train": (4000, 0), "test": (500, 1)}  # count, seed


def _ball(xx: np.ndarray, yy: np.ndarray, cx: float, base: float, r: float) -> tuple[np.ndarray, np.ndarray]:
    cy = base - r
    nx, ny = (xx - cx) / r, (yy - cy) / r
    inside = nx**2 + ny**2 <= 1
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
    lambert = np.clip(nx * LIGHT[0] + ny * LIGHT[1] + nz * LIGHT[2], 0, 1)
    shade = 0.25 + 0.75 * lambert + 0.5 * lambert**20  # ambient, diffuse, a highlight
    return inside, shade


def _box(xx: np.ndarray, yy: np.ndarray, cx: float, base: float, r: float) -> tuple[np.ndarray, np.ndarray]:
    """A cube seen from slightly above and left: front square, a top face and a right side receding up-right."""
    a, d = r, 0.45 * r  # half side of the front face; depth offset of the back edges
    left, right, top = cx - a, cx + a, base - 2 * a
    front = (xx >= left) & (xx <= right) & (yy >= top) & (yy <= base)
    up = top - yy  # height above the front face's top edge
    lid = (up >= 0) & (up <= d) & (xx >= left + up) & (xx <= right + up)
    over = xx - right  # distance right of the front face
    side = (over >= 0) & (over <= d) & (yy <= base - over) & (yy >= top - over)
    shade = np.where(front, 0.8, np.where(lid, 1.15, 0.45))
    return front | lid | side, shade


def _cone(xx: np.ndarray, yy: np.ndarray, cx: float, base: float, r: float) -> tuple[np.ndarray, np.ndarray]:
    h = 2.6 * r
    half = r * (yy - (base - h)) / h  # half width at each height
    inside = (yy >= base - h) & (yy <= base) & (np.abs(xx - cx) <= half)
    across = (xx - cx) / np.maximum(half, 1e-6)  # -1 at the left edge, 1 at the right
    shade = 0.3 + 0.7 * np.clip(0.5 - 0.5 * across, 0, 1) ** 0.8
    return inside, shade


SHAPES = {"ball": _ball, "box": _box, "cone": _cone}


def render_pair(rng: np.random.Generator, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (label colours, rendered scene), each ``[3, R, R]`` float32 in [0, 1]."""
    s = resolution * SUPERSAMPLE
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    horizon = rng.uniform(0.3, 0.55) * s
    labels = np.where(yy < horizon, 0, 1)
    sky_t = np.clip(yy / horizon, 0, 1)[..., None]
    ground_t = np.clip((yy - horizon) / (s - horizon), 0, 1)[..., None]
    image = np.where((yy < horizon)[..., None], SKY_TOP + (SKY_HORIZON - SKY_TOP) * sky_t,
                     GROUND_HORIZON + (GROUND_NEAR - GROUND_HORIZON) * ground_t)
    things = []
    for _ in range(rng.integers(1, 4)):
        base = rng.uniform(horizon + 0.12 * s, 0.97 * s)
        r = (0.05 + 0.12 * (base - horizon) / (s - horizon)) * s  # nearer (lower) is larger
        things.append((base, rng.uniform(r, s - r), r, str(rng.choice(list(SHAPES)))))
    things.sort()  # far (high on the canvas) first, near drawn over them
    ground = labels == 1
    for base, cx, r, _ in things:  # shadows fall on the ground only, below and right of each object
        inside = ((xx - cx - 0.7 * r) / (1.3 * r)) ** 2 + ((yy - base) / (0.35 * r)) ** 2 <= 1
        image = np.where((inside & ground)[..., None], image * SHADOW, image)
    for base, cx, r, shape in things:
        inside, shade = SHAPES[shape](xx, yy, cx, base, r)
        colour = np.clip(OBJECT_COLOURS[shape] * shade[..., None], 0, 1)
        image = np.where(inside[..., None], colour, image)
        labels = np.where(inside, CLASSES.index(shape), labels)
    image = image.reshape(resolution, SUPERSAMPLE, resolution, SUPERSAMPLE, 3).mean((1, 3))  # box filter
    centre = SUPERSAMPLE // 2
    label_map = PALETTE[labels[centre::SUPERSAMPLE, centre::SUPERSAMPLE]]
    return label_map.transpose(2, 0, 1).astype(np.float32), image.transpose(2, 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=8)
def scene_pairs(split: str, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's (label maps, scenes) ``[N, 3, R, R]``; the same for every run (callers must not write to them)."""
    if split == "all":
        parts = [scene_pairs(s, resolution) for s in SCENES]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    n, seed = SCENES[split]
    rng = np.random.default_rng(seed)
    pairs = [render_pair(rng, resolution) for _ in range(n)]
    return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs]))


@DATASETS.register("labels2scenes")
def labels2scenes(req: DataRequest) -> Dataset:
    """paired: label maps -> rendered scenes of balls, boxes and cones on the ground (held out by seed)."""
    check_resolution(req.resolution)
    labels, scenes = scene_pairs(req.split, req.resolution)
    info = {"held_out": True, "classes": list(CLASSES)}
    a, b = set_channels(labels, req.channels), set_channels(scenes, req.channels)  # grey: the palette stays distinct
    return Dataset("labels2scenes", a.clone(), None, "image", [], info, b.clone(), None, True)
