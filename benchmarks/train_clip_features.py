"""Train the clip network behind ``clip_fd`` (ganforge.metrics.video) and write its weights and card.

Usage:
    python benchmarks/train_clip_features.py              # train, calibrate, write src/ganforge/assets/clip_features.*
    python benchmarks/train_clip_features.py --no-write   # train and calibrate only

The network (``ClipNet``, a ~81k-parameter 3-D CNN) sees the 4,096 moving-digits *train* clips (32 px, 16
frames, one digit) only, and learns what the data says about each of them: which digit it shows (cross-entropy)
and where the sprite is in every frame (mean squared error of the 16 top-left positions, scaled to [-1, 1]).
Time-reversed clips are added as augmentation (a bouncing digit played backwards is a valid clip).
Its 64-d penultimate layer is then a feature space of content and motion. Fixed seeds, CPU, one thread;
about three minutes. It reports digit accuracy and position error on the train clips and on the test clips
(digits it never saw), and calibrates clip_fd: real train clips against real test clips (small) and against
broken test clips - frames shuffled, frozen (first frame repeated), flicker (every frame from an independent
clip and time) - which must all be far.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.data import DataRequest, Dataset, load_dataset
from ganforge.metrics.frechet import frechet_distance
from ganforge.metrics.video import CLIP_ARCH, CLIP_ASSET, CLIP_FEATURE_DIM, ClipNet

SEED = 0
EPOCHS = 20
BATCH_SIZE = 64
LR = 3e-3
WEIGHT_DECAY = 5e-4
POSITION_WEIGHT = 10.0  # squared position error in [-1, 1] units; 1 px at 32 px is 1/8 of a unit
ASSETS = Path(__file__).resolve().parent.parent / "src" / "ganforge" / "assets"


def targets(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit labels [N] and the sprite's top-left in every frame [N, T, 2], scaled from [0, side - sprite] to
    [-1, 1]."""
    room = data.x.shape[-1] - data.info["sprite"]
    return data.y.long(), data.info["positions"][:, 0] / room * 2 - 1


@torch.no_grad()
def evaluate(net: ClipNet, data: Dataset) -> dict[str, float]:
    """Digit accuracy and position RMSE (pixels) on a set of clips."""
    net.eval()
    y, pos = targets(data)
    room = data.x.shape[-1] - data.info["sprite"]
    logits, pred = zip(*[net(data.x[i : i + 256])[:2] for i in range(0, len(data), 256)])
    correct = (torch.cat(logits).argmax(1) == y).double().mean()
    rmse = ((torch.cat(pred) - pos) * room / 2).square().mean().sqrt()
    return {"digit_accuracy": round(float(correct), 6), "position_rmse_px": round(float(rmse), 4)}


def train(tr: Dataset, te: Dataset, seed: int = SEED, epochs: int = EPOCHS) -> tuple[ClipNet, dict]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = ClipNet()
    y, pos = targets(tr)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps = epochs * math.ceil(len(tr) / BATCH_SIZE)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(tr), generator=gen)
        total = 0.0
        for i in range(0, len(tr), BATCH_SIZE):
            idx = perm[i : i + BATCH_SIZE]
            x, p = tr.x[idx], pos[idx]
            back = torch.rand(len(idx), generator=gen) < 0.5  # time reversal
            x = torch.where(back[:, None, None, None, None], x.flip(1), x)
            p = torch.where(back[:, None, None], p.flip(1), p)
            logits, pred, _ = net(x)
            loss = F.cross_entropy(logits, y[idx]) + POSITION_WEIGHT * F.mse_loss(pred, p)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}  loss {total / len(tr):.4f}  test {evaluate(net, te)}  "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    net.eval()
    card = {
        "name": CLIP_ASSET,
        "train": evaluate(net, tr),
        "test": evaluate(net, te),
        "n_train": len(tr),
        "n_test": len(te),
        "data": "moving-digits (one digit, 32 px, 16 frames): the train clips (digits from the digits train split); "
                "test: the test clips (unseen digits)",
        "targets": f"digit (cross-entropy) + {POSITION_WEIGHT} x MSE of the sprite's top-left in all 16 frames "
                   "scaled to [-1, 1]",
        "augmentation": "time reversal with probability 0.5",
        "seed": seed,
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "optimizer": f"AdamW lr {LR} (one-cycle) weight_decay {WEIGHT_DECAY}",
        "arch": CLIP_ARCH,
        "feature_dim": CLIP_FEATURE_DIM,
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }
    return net, card


def broken(clips: torch.Tensor, seed: int = SEED) -> dict[str, torch.Tensor]:
    """The calibration's broken clips: frames shuffled (one order per clip), frozen, flicker."""
    g = torch.Generator().manual_seed(seed)
    n, t = clips.shape[:2]
    order = torch.argsort(torch.rand(n, t, generator=g), 1)
    frames = clips.flatten(0, 1)
    return {
        "shuffled": clips[torch.arange(n)[:, None], order],
        "frozen": clips[:, :1].expand_as(clips).contiguous(),
        "flicker": frames[torch.randperm(n * t, generator=g)].view_as(clips),
    }


@torch.no_grad()
def calibrate(net: ClipNet, tr: Dataset, te: Dataset) -> dict[str, float]:
    """clip_fd of the train clips (first 1,024) against the test clips and against broken test clips."""
    def feats(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(x[i : i + 256])[2] for i in range(0, len(x), 256)])

    ref = feats(tr.x[: len(te)])
    out = {"real_test": frechet_distance(feats(te.x), ref)}
    out.update({k: frechet_distance(feats(v), ref) for k, v in broken(te.x).items()})
    return {k: round(v, 4) for k, v in out.items()}


def save(net: ClipNet, card: dict, out_dir: Path) -> Path:
    from ganforge.metrics.digits_classifier import save_asset

    return save_asset(net, CLIP_ASSET, CLIP_ARCH, card, out_dir)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train the clip network behind ganforge's clip_fd.")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--out", type=Path, default=ASSETS)
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--min-accuracy", type=float, default=0.95, help="refuse to write weights below this test accuracy")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # tiny convolutions; a fixed thread count keeps reductions bit-stable
    tr = load_dataset("moving-digits", DataRequest(32, channels=1, split="train"))
    te = load_dataset("moving-digits", DataRequest(32, channels=1, split="test"))
    net, card = train(tr, te, args.seed, args.epochs)
    card["clip_fd_calibration"] = calibrate(net, tr, te)
    print(f"train {card['train']}\ntest  {card['test']}\nclip_fd vs 1,024 train clips: {card['clip_fd_calibration']}\n"
          f"({card['parameters']} parameters, {card['train_seconds']} s)")
    if args.no_write:
        return
    if card["test"]["digit_accuracy"] < args.min_accuracy:
        raise SystemExit(f"test accuracy {card['test']['digit_accuracy']} < {args.min_accuracy}; weights not written")
    path = save(net, card, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB) and {path.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
