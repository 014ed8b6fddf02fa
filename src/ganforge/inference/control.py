"""Latent-space control of a trained generator: per-seed latents, style mixing, latent walks.

A seed means what it means to ``ganforge sample --n 1 --seed S``: the image at seed S in a
mixing grid or a walk is that sample. Walks move in w for style-based generators (linear, after truncation)
and in z for the other recipes (spherical, since Gaussian latents concentrate on a sphere).
"""
from __future__ import annotations

import re

import torch
import torch.nn as nn

from ..data import DataSpec
from ..errors import GanforgeError
from . import Recipe
from .drawing import latents, synthesize

Tensor = torch.Tensor


def parse_seeds(text: str, what: str = "--seeds") -> list[int]:
    """``"1,2,3"`` or ``"1-5"`` (or a mix) -> seeds; a one-line error otherwise."""
    seeds: list[int] = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise GanforgeError(f"{what} {text!r}: expected seeds >= 0 such as 1,2,3 or 1-5")
        seeds += list(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    if not seeds:
        raise GanforgeError(f"{what} {text!r}: expected seeds >= 0 such as 1,2,3 or 1-5")
    return seeds


def seed_latents(recipe: Recipe, spec: DataSpec, seeds: list[int], label: int | None, device: torch.device,
                 truncation: float | None = None) -> tuple[Tensor, Tensor | None]:
    """z [S, ...] and labels [S] (None if unconditional): seed s's is what ``sample --seed s --n 1`` draws."""
    drawn = [latents(recipe, spec, 1, s, label, truncation, device) for s in seeds]
    return torch.cat([z for z, _ in drawn]), None if drawn[0][1] is None else torch.cat([y for _, y in drawn])


def layer_range(spec: str | None, num_ws: int) -> list[int]:
    """``coarse`` / ``middle`` / ``fine`` (thirds of the layers), ``A-B``, ``a,b,c``; default coarse."""
    thirds = [round(num_ws * i / 3) for i in range(4)]
    named = {"coarse": range(0, max(thirds[1], 1)), "middle": range(thirds[1], thirds[2]),
             "fine": range(thirds[2], num_ws)}
    spec = (spec or "coarse").strip()
    if spec in named:
        return list(named[spec])
    try:
        layers = parse_seeds(spec, "--layers")
    except GanforgeError:
        layers = []
    if not layers or max(layers) >= num_ws:
        raise GanforgeError(f"--layers {spec!r}: expected coarse, middle, fine, A-B or a,b,c with layers "
                            f"0..{num_ws - 1} (this generator has {num_ws} style inputs)")
    return layers


@torch.no_grad()
def w_of(recipe: Recipe, G: nn.Module, z: Tensor, labels: Tensor | None, truncation: float | None) -> Tensor:
    if not recipe.has_styles:
        raise GanforgeError(f"recipe {recipe.cfg.recipe} has no intermediate latent w; w(), style mixing and "
                            "walks in w need a style-based generator")
    return G.w(z, labels if recipe.conditional else None, truncation)


@torch.no_grad()
def style_mix(recipe: Recipe, G: nn.Module, spec: DataSpec, row_seeds: list[int], col_seeds: list[int],
              layers: str | None = None, truncation: float | None = None, label: int | None = None) -> Tensor:
    """The mixing grid of the StyleGAN paper in data space, ``[(R + 1) * (C + 1), C, H, W]``: the top
    row holds the column seeds' images, the left column the row seeds', cell (r, c) the row image
    with the styles of ``layers`` taken from column c; the top-left cell is blank."""
    if not recipe.has_styles:
        raise GanforgeError(f"recipe {recipe.cfg.recipe} has no styles to mix; style mixing needs a style-based "
                            "generator")
    device = next(G.parameters()).device
    picked = layer_range(layers, G.num_ws)
    zr, yr = seed_latents(recipe, spec, row_seeds, label, device, truncation)
    zc, yc = seed_latents(recipe, spec, col_seeds, label, device, truncation)
    wr = G.broadcast(w_of(recipe, G, zr, yr, truncation))  # [R, L, w]
    wc = G.broadcast(w_of(recipe, G, zc, yc, truncation))  # [C, L, w]
    mask = torch.zeros(G.num_ws, dtype=torch.bool, device=device)
    mask[picked] = True
    mixed = torch.where(mask.view(1, 1, -1, 1), wc.unsqueeze(0), wr.unsqueeze(1))  # [R, C, L, w]
    rows = spec.from_model(recipe.styles(G, wr).float()).cpu()
    cols = spec.from_model(recipe.styles(G, wc).float()).cpu()
    cells = spec.from_model(recipe.styles(G, mixed.flatten(0, 1)).float()).cpu().view(len(wr), len(wc), *rows.shape[1:])
    out = [torch.ones_like(rows[0])]  # blank corner
    out += list(cols)
    for r in range(len(wr)):
        out += [rows[r], *cells[r]]
    return torch.stack(out)


@torch.no_grad()
def text_walk(recipe: Recipe, G: nn.Module, spec: DataSpec, prompts: list[str], frames: int, seed: int = 0,
              truncation: float | None = None) -> Tensor:
    """A walk between the sentence embeddings of ``prompts`` (spherical: they are unit vectors) at one latent,
    the first of ``seed``: data space ``[(len(prompts) - 1) * frames + 1, C, H, W]`` (text-to-image runs)."""
    if not recipe.texts:
        raise GanforgeError(f"--prompts is for text-to-image runs; this is a {recipe.cfg.recipe} run")
    if len(prompts) < 2:
        raise GanforgeError(f"--prompts needs at least two prompts to walk between, separated by '|'; got {prompts}")
    if frames < 1:
        raise GanforgeError(f"--frames {frames} is not allowed; expected an integer >= 1")
    device = next(G.parameters()).device
    e = G.text(recipe.prompt_tokens(len(prompts), prompts, None, device))  # [P, D]
    t = torch.arange(frames, device=device, dtype=torch.float32) / frames
    path = torch.cat([slerp(e[i], e[i + 1], t) for i in range(len(prompts) - 1)] + [e[-1:]])
    z = recipe.latent(1, torch.Generator(device).manual_seed(seed), device, truncation).expand(len(path), -1)
    return spec.from_model(G.synthesize(z, G.code(path)[0]).float()).cpu()


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` ([D]) at fractions ``t`` ([F]) -> [F, D]."""
    na, nb = a.norm(), b.norm()
    cos = (a @ b / (na * nb).clamp(min=1e-12)).clamp(-1, 1)
    omega = torch.arccos(cos)
    t = t.view(-1, 1)
    if omega.abs() < 1e-6:
        return torch.lerp(a, b, t)
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(omega)
    return direction * torch.lerp(na, nb, t)  # the angle spherically, the norm linearly


@torch.no_grad()
def interpolate(recipe: Recipe, G: nn.Module, spec: DataSpec, seeds: list[int], frames: int,
                truncation: float | None = None, label: int | None = None) -> Tensor:
    """A walk through the latents of ``seeds`` in order, ``frames`` steps per segment: data space
    ``[(len(seeds) - 1) * frames + 1, C, H, W]``. Conditional runs keep the first seed's class
    (or ``label``) along the walk."""
    if frames < 1:
        raise GanforgeError(f"--frames {frames} is not allowed; expected an integer >= 1")
    if recipe.texts:
        raise GanforgeError(f"a {recipe.cfg.recipe} run walks between prompts: give --prompts "
                            "'a red circle|a blue square'")
    if len(seeds) < 2:
        raise GanforgeError(f"--seeds needs at least two seeds to walk between; got {seeds}")
    device = next(G.parameters()).device
    z, y = seed_latents(recipe, spec, seeds, label, device, truncation)
    if y is not None:
        y = y[:1].expand(len(seeds))
    t = torch.arange(frames, device=device, dtype=torch.float32) / frames
    if recipe.has_styles:
        w = w_of(recipe, G, z, y, truncation)  # [S, w_dim]
        path = torch.cat([torch.lerp(w[i], w[i + 1], t.view(-1, 1)) for i in range(len(seeds) - 1)] + [w[-1:]])
        return torch.cat([spec.from_model(recipe.styles(G, G.broadcast(part)).float()).cpu()
                          for part in path.split(256)])
    path = recipe.walk(z.flatten(1), t)
    labels = None if y is None else y[:1].expand(len(path))
    return synthesize(recipe, G, spec, path.view(-1, *z.shape[1:]), labels, 256, truncation)
