"""A small CNN that recognises the scikit-learn digits: the judge for digit-generating GANs.

Inception features say little about 8x8 handwritten digits, so ganforge ships its own
classifier, trained once on the digits *train* split and checked on the held-out *test*
split. It serves two purposes: class metrics (confidence, class balance, label agreement)
and, through its penultimate layer, a feature space for FD / KID / PRDC on digits.

``python -m ganforge.metrics.digits_classifier`` retrains it reproducibly (fixed seed, CPU)
and rewrites ``ganforge/assets/digits_classifier.{safetensors,json}``.

The same network trained on typeset digits (``--data typeset``: Pillow's font, as in
``digits2typeset``, from seeds of its own) is ``typeset_classifier``: the judge of translations
into typeset digits.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import GanforgeError

if TYPE_CHECKING:
    from importlib.abc import Traversable

    from ..data.base import Dataset

RESOLUTION = 16
NUM_CLASSES = 10
FEATURE_DIM = 128
ASSET_NAME = "digits_classifier"
TYPESET = "typeset_classifier"
TYPESET_SEEDS = (2, 3)  # train, test renders: neither is digits2typeset's (0, 1)
# a judge of broader sizes and offsets than digits2typeset renders, so it reads any typeset-looking digit
TYPESET_HEIGHTS, TYPESET_SHIFT = (0.45, 1.0), 0.1
ARCH = (
    "conv3x3(1->16)-BN-ReLU, conv3x3(16->32)-BN-ReLU, maxpool2, conv3x3(32->64)-BN-ReLU, maxpool2, "
    "conv3x3(64->128)-BN-ReLU, global-avg-pool (128-d features), "
    "dropout 0.3, linear(128->10); input grey 16x16 in [0, 1]"
)
# Default training recipe; all of it is recorded in the JSON card next to the weights.
SEED = 0
EPOCHS = 30
BATCH_SIZE = 64
LR = 3e-3
WEIGHT_DECAY = 5e-4


def to_classifier_input(images: torch.Tensor) -> torch.Tensor:
    """Any [N, C, H, W] image batch in [0, 1] -> grey [N, 1, 16, 16] float32.

    RGB is converted with ITU-R 601 luma weights (as ``ganforge.data.images.set_channels``);
    the resize is bilinear, antialiased when shrinking, like the dataset loaders, so an 8x8
    or 32x32 rendering of a digit reaches the classifier as the dataset's 16x16 does.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise GanforgeError(f"digits classifier expects images [N, 1|3, H, W], got shape {tuple(images.shape)}")
    x = images.float()
    if x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * w).sum(1, keepdim=True)
    if x.shape[-2:] != (RESOLUTION, RESOLUTION):
        shrinking = x.shape[-1] > RESOLUTION or x.shape[-2] > RESOLUTION
        x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear", align_corners=False, antialias=shrinking)
    return x.clamp(0, 1)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DigitsClassifier(nn.Module):
    """~99k-parameter CNN; ``forward`` returns ``(logits [N, 10], features [N, 128])``.

    Global average pooling (rather than a wide flatten + dense layer) keeps the weights small
    and makes the features tolerant of the one-pixel shifts a generator easily makes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _block(1, 16), _block(16, 32), nn.MaxPool2d(2),  # 16 -> 8
            _block(32, 64), nn.MaxPool2d(2),  # 8 -> 4
            _block(64, FEATURE_DIM), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.body(to_classifier_input(images) * 2 - 1)
        return self.head(self.dropout(feats)), feats


# --------------------------------------------------------------------------- loading


def _asset(name: str) -> Traversable:
    return resources.files("ganforge") / "assets" / name


@functools.lru_cache(maxsize=2)
def load_digits_classifier(name: str = ASSET_NAME) -> DigitsClassifier:
    """The shipped, trained classifier (eval mode, no grad, CPU), loaded once per process;
    ``name`` = ``typeset_classifier`` for the one trained on typeset digits."""
    from safetensors.torch import load

    asset = _asset(f"{name}.safetensors")
    if not asset.is_file():
        flag = " --data typeset" if name == TYPESET else ""
        raise GanforgeError(
            f"classifier weights missing ({name}.safetensors in ganforge/assets); "
            f"rebuild them with: python -m ganforge.metrics.digits_classifier{flag}"
        )
    model = DigitsClassifier()
    model.load_state_dict(load(asset.read_bytes()))
    model.eval().requires_grad_(False)
    return model


def classifier_card(name: str = ASSET_NAME) -> dict:
    """The JSON card written next to the weights (accuracy, seed, architecture, recipe)."""
    return json.loads(_asset(f"{name}.json").read_text())


@torch.no_grad()
def classify(images: torch.Tensor, batch_size: int = 1024,
             name: str = ASSET_NAME) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [N, 10], features [N, 128])`` of an image batch, computed in batches on CPU."""
    model = load_digits_classifier(name)
    logits, feats = [], []
    for start in range(0, len(images), batch_size):
        lo, fe = model(images[start : start + batch_size].cpu())
        logits.append(lo)
        feats.append(fe)
    if not logits:
        return torch.empty(0, NUM_CLASSES), torch.empty(0, FEATURE_DIM)
    return torch.cat(logits), torch.cat(feats)


# --------------------------------------------------------------------------- training


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random small affine jitter: rotation +-12 deg, scale 0.9-1.1, shift +-1.5 px (at 16 px).

    Generated digits are rarely perfectly centred; a classifier trained only on the
    dataset's exact framing would call slightly shifted but clean digits "unconfident".
    """
    n = len(x)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(12)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (1.5 * 2 / RESOLUTION)  # grid units: 2 = full width
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(x[i : i + 512])[0].argmax(1) for i in range(0, len(x), 512)])
    return (pred == y).float().mean().item()


def _typeset(split: int) -> Dataset:
    from ..data.base import Dataset
    from ..data.translation import typeset_digits

    x, y = typeset_digits("train", RESOLUTION, per_class=200 if split == 0 else 50, seed=TYPESET_SEEDS[split],
                          heights=TYPESET_HEIGHTS, shift=TYPESET_SHIFT)
    return Dataset("typeset", x, y, "image", [str(i) for i in range(10)])


def train(seed: int = SEED, epochs: int = EPOCHS, log: bool = True,
          data: str = "digits") -> tuple[DigitsClassifier, dict]:
    """Train on the digits train split (or typeset digits); returns the model and its card (with test accuracy)."""
    from ..data.base import DataRequest, load_dataset

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if data == "typeset":
        tr, te = _typeset(0), _typeset(1)
    else:
        tr = load_dataset("digits", DataRequest(resolution=RESOLUTION, split="train", channels=1))
        te = load_dataset("digits", DataRequest(resolution=RESOLUTION, split="test", channels=1))
    model = DigitsClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = math.ceil(len(tr) / BATCH_SIZE)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=epochs * steps_per_epoch)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        total = 0.0
        for i in range(0, len(tr), BATCH_SIZE):
            idx = perm[i : i + BATCH_SIZE]
            logits, _ = model(augment(tr.x[idx], gen))
            loss = F.cross_entropy(logits, tr.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log and (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1:3d}  loss {total / len(tr):.4f}  test acc {accuracy(model, te.x, te.y):.4f}")
    model.eval()
    card = {
        "name": TYPESET if data == "typeset" else ASSET_NAME,
        "test_accuracy": round(accuracy(model, te.x, te.y), 6),
        "train_accuracy": round(accuracy(model, tr.x, tr.y), 6),
        "n_train": len(tr),
        "n_test": len(te),
        "data": (f"digits 0-9 typeset with Pillow's built-in font (ganforge.data.translation.render_typeset), "
                 f"glyph heights {TYPESET_HEIGHTS} of the side, shifts +-{TYPESET_SHIFT}, train render seed "
                 f"{TYPESET_SEEDS[0]}, test seed {TYPESET_SEEDS[1]}") if data == "typeset" else
                "scikit-learn digits, ganforge fixed stratified split (20 % test, seed 0), resized 8->16 bilinear",
        "seed": seed,
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "optimizer": f"AdamW lr {LR} (one-cycle) weight_decay {WEIGHT_DECAY}, plain cross-entropy",
        "augmentation": "random affine: rotation +-12 deg, scale 0.9-1.1, shift +-1.5 px",
        "arch": ARCH,
        "feature_dim": FEATURE_DIM,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }
    return model, card


def save(model: DigitsClassifier, card: dict, out_dir: Path) -> Path:
    return save_asset(model, card["name"], ARCH, card, out_dir)


def save_asset(net: nn.Module, name: str, arch: str, card: dict, out_dir: Path) -> Path:
    """A network shipped with the package: ``NAME.safetensors`` (its architecture and seed in the metadata) and its
    card ``NAME.json``, readable by everyone."""
    from safetensors.torch import save_file

    from ..io import atomic_path, write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"arch": arch, "seed": str(card["seed"])})
    write_json(out_dir / f"{name}.json", card)
    for f in (weights, out_dir / f"{name}.json"):
        f.chmod(0o644)  # package data: atomic temp files are created 0600
    return weights


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train the digits classifier used by ganforge's metrics.")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "assets")
    p.add_argument("--data", choices=("digits", "typeset"), default="digits")
    p.add_argument("--min-accuracy", type=float, default=0.97, help="refuse to write weights below this")
    args = p.parse_args(argv)
    # One thread: the convolutions are tiny, so extra threads mostly wait on each other (and
    # thrash when the machine is busy), and a fixed thread count keeps reductions bit-stable.
    torch.set_num_threads(1)
    model, card = train(args.seed, args.epochs, data=args.data)
    print(f"test accuracy {card['test_accuracy']:.4f} on {card['n_test']} held-out {args.data} digits "
          f"({card['parameters']} parameters, {card['train_seconds']} s)")
    if card["test_accuracy"] < args.min_accuracy:
        raise SystemExit(f"test accuracy {card['test_accuracy']:.4f} < {args.min_accuracy}; weights not written")
    path = save(model, card, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB) and {path.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
