"""Pictures of a run: sample grids, 2D scatter plots, loss curves."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..io import atomic_path


def grid_image(images: torch.Tensor, nrow: int | None = None, enlarge: bool = True) -> torch.Tensor:
    """[N, C, H, W] in [0, 1] -> one grid [3, H', W']; with ``enlarge`` images under 64 px are enlarged
    (nearest neighbour) so a person can see them."""
    from torchvision.utils import make_grid

    nrow = nrow or math.ceil(math.sqrt(len(images)))
    images = images.detach().float().cpu().clamp(0, 1)
    scale = max(1, 64 // images.shape[-1]) if enlarge else 1
    if scale > 1:
        images = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    return make_grid(images, nrow=nrow, padding=2, pad_value=0.5)


def save_image_grid(images: torch.Tensor, path: Path, nrow: int | None = None,
                    info: dict[str, str] | None = None) -> None:
    """One PNG grid of ``images``, with provenance ``info`` (see :mod:`ganforge.runs.provenance`) and the watermark."""
    from .provenance import save_png

    save_png(grid_image(images, nrow), path, info or {})


def captioned_sheet(images: torch.Tensor, captions: list[str], ncol: int = 4, cell: int = 128) -> torch.Tensor:
    """Images ``[N, C, H, W]`` in [0, 1], each enlarged to ``cell`` px with its caption (lines split on "\\n",
    wrapped) written below, ``ncol`` to a row, on white: ``[3, H', W']`` in [0, 1]."""
    import textwrap

    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    wrapped = [[w for line in c.split("\n") for w in textwrap.wrap(line, 24) or [""]] for c in captions]
    line_h, pad = 12, 6
    text_h = line_h * max(len(w) for w in wrapped) + pad
    rows = -(-len(images) // ncol)
    sheet = Image.new("RGB", (ncol * (cell + pad) + pad, rows * (cell + text_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (img, lines) in enumerate(zip(images, wrapped)):
        x, y = pad + (i % ncol) * (cell + pad), pad + (i // ncol) * (cell + text_h + pad)
        arr = (img.float().clamp(0, 1).expand(3, -1, -1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        sheet.paste(Image.fromarray(arr).resize((cell, cell), Image.Resampling.NEAREST), (x, y))
        for j, line in enumerate(lines):
            draw.text((x, y + cell + 2 + j * line_h), line, fill=(30, 30, 30), font=font)
    return torch.from_numpy(np.asarray(sheet).copy()).permute(2, 0, 1).float() / 255


def save_points_plot(fake: torch.Tensor, real: torch.Tensor, path: Path, title: str = "") -> None:
    """Scatter of generated 2D points over real ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    r, f = real.detach().cpu().numpy(), fake.detach().cpu().numpy()
    ax.scatter(r[:, 0], r[:, 1], s=2, c="tab:blue", alpha=0.3, label="real")
    ax.scatter(f[:, 0], f[:, 1], s=2, c="tab:red", alpha=0.5, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


def save_loss_plot(records: list[dict], path: Path) -> None:
    """Loss curves (``Loss/*``) and discriminator accuracy against training step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for r in records for k in r if k.startswith("Loss/")})
    if not keys:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), dpi=100)
    for k in keys:
        pts = [(r["step"], r[k]) for r in records if isinstance(r.get(k), float)]
        axes[0].plot([p[0] for p in pts], [p[1] for p in pts], label=k)
    axes[0].set_xlabel("step")
    axes[0].set_title("losses")
    axes[0].legend()
    acc = [(r["step"], r["D/accuracy"]) for r in records if isinstance(r.get("D/accuracy"), float)]
    if acc:
        axes[1].plot([p[0] for p in acc], [p[1] for p in acc], color="tab:green")
        axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("step")
    axes[1].set_title("discriminator accuracy")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
