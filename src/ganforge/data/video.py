"""Video data: clips ``[N, T, C, H, W]`` in [0, 1] (``Dataset.kind == "video"``).

``moving-digits``: the bundled analogue of Moving MNIST (Srivastava et al. 2015), made offline from
scikit-learn's digits. Each clip holds one (``moving-digits``) or two (``moving-digits:2``) digits, each
with its own random start, direction and speed, bouncing off the walls of a square canvas
(``--resolution``, 32 by default); ``moving-digits:K:T`` makes T frames (16 by default). Two digits
overlap by their maximum. The clips are seeded and fixed: the train split draws its digits from the
digits' train split, the test split from the test digits only. Every clip's digits and trajectories are
kept in ``info`` for evaluation (:mod:`ganforge.metrics.video`).

``video:DIR``: a folder of short clips: animated GIF/WebP files, MP4 files (with imageio-ffmpeg), or
one subfolder of frames per clip (sorted by name). Frames are centre-cropped to squares and resized;
every clip is cut into windows of T = min(16, the shortest clip) frames.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..console import info as say
from ..errors import DataError
from .base import DATASETS, DataRequest, Dataset
from .digits import digits_tensor
from .images import check_resolution, resize, set_channels, square, take_split

FRAMES = 16
CLIPS = {"train": 4096, "test": 1024}
SPEED = (1.0, 2.0)  # pixels per frame at 32 px (scaled with the canvas)
MAX_DIGITS = 3
MAX_FRAMES = 64
MIN_FRAMES = 4


def bounce(start: torch.Tensor, velocity: torch.Tensor, frames: int, room: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``[..., T, 2]`` of points moving at ``velocity`` from ``start`` (``[..., 2]``) in ``[0, room]``,
    reflected at the walls, and the frames ``[..., T]`` (bool) at which a bounce happened on the way to them."""
    pos, vel, out, hits = start.clone(), velocity.clone(), [start.clone()], [torch.zeros(start.shape[:-1], dtype=bool)]
    for _ in range(frames - 1):
        pos = pos + vel
        low, high = pos < 0, pos > room
        pos = torch.where(low, -pos, torch.where(high, 2 * room - pos, pos))
        vel = torch.where(low | high, -vel, vel)
        out.append(pos.clone())
        hits.append((low | high).any(-1))
    return torch.stack(out, -2), torch.stack(hits, -1)


def render(sprites: torch.Tensor, positions: torch.Tensor, side: int) -> torch.Tensor:
    """Sprites ``[N, K, s, s]`` at top-left ``positions`` ``[N, K, T, 2]`` (row, col; rounded) on a black
    ``side`` canvas, overlapping by their maximum -> clips ``[N, T, 1, side, side]``."""
    n, k, t = positions.shape[:3]
    s = sprites.shape[-1]
    clips = torch.zeros(n, t, side, side)
    at = positions.round().long().clamp(0, side - s)
    rows = at[..., 0, None] + torch.arange(s)  # [N, K, T, s]
    cols = at[..., 1, None] + torch.arange(s)
    ni = torch.arange(n)[:, None, None, None, None]
    ti = torch.arange(t)[None, None, :, None, None]
    for j in range(k):
        r, c = rows[:, j, :, :, None], cols[:, j, :, None, :]  # [N, T, s, 1], [N, T, 1, s]
        painted = sprites[:, j, None].expand(n, t, s, s)
        idx = (ni[:, 0], ti[:, 0], r, c)
        clips[idx] = torch.maximum(clips[idx], painted)
    return clips.unsqueeze(2)


def moving_digits_clips(split: str, side: int = 32, digits: int = 1, frames: int = FRAMES,
                        n: int | None = None, seed: int | None = None) -> tuple[torch.Tensor, dict]:
    """Clips ``[n, T, 1, side, side]`` and their facts: ``digits`` [n, K] labels, ``positions`` [n, K, T, 2]
    (top-left of each digit, row/col, in pixels), ``bounces`` [n, K, T], ``sprite`` (the digits' side)."""
    if split not in CLIPS:
        raise DataError(f"unknown split {split!r}; allowed: {', '.join(CLIPS)}")
    x, y = digits_tensor()
    idx = take_split(len(y), split, labels=y, seed=0)  # the digits split: test clips show unseen digits
    sprite = side // 2
    pool, labels = resize(x[idx], sprite)[:, 0], y[idx]
    n = CLIPS[split] if n is None else n
    g = torch.Generator().manual_seed(seed if seed is not None else (0 if split == "train" else 1))
    pick = torch.randint(len(pool), (n, digits), generator=g)
    room = float(side - sprite)
    start = torch.rand(n, digits, 2, generator=g) * room
    angle = torch.rand(n, digits, generator=g) * 2 * math.pi
    speed = (SPEED[0] + torch.rand(n, digits, generator=g) * (SPEED[1] - SPEED[0])) * side / 32
    velocity = torch.stack([angle.sin(), angle.cos()], -1) * speed[..., None]
    positions, bounces = bounce(start, velocity, frames, room)
    clips = render(pool[pick], positions, side)
    return clips, {"digits": labels[pick], "positions": positions, "bounces": bounces, "sprite": sprite}


def clip_arg(arg: str) -> tuple[int, int]:
    """``moving-digits[:K[:T]]`` -> (digits K, frames T), checked."""
    parts = [p for p in arg.split(":") if p] if arg else []
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(parts) > 2 or len(values) != len(parts):
        raise DataError(f"moving-digits:{arg} is not allowed; expected moving-digits[:DIGITS[:FRAMES]], e.g. "
                        "moving-digits:2:16")
    k, t = (values + [1, FRAMES][len(values):])[:2]
    if not 1 <= k <= MAX_DIGITS:
        raise DataError(f"moving-digits with {k} digits is not allowed; allowed 1..{MAX_DIGITS}")
    if not MIN_FRAMES <= t <= MAX_FRAMES:
        raise DataError(f"moving-digits with {t} frames is not allowed; allowed {MIN_FRAMES}..{MAX_FRAMES}")
    return k, t


@DATASETS.register("moving-digits")
def moving_digits(req: DataRequest, arg: str = "") -> Dataset:
    """moving-digits[:K[:T]]: K bouncing digits (1), T frames (16), 4,096 train / 1,024 test clips."""
    check_resolution(req.resolution)
    if req.resolution < 16:
        raise DataError(f"moving-digits needs a canvas of at least 16 px; got resolution {req.resolution}")
    k, t = clip_arg(arg)
    split = "test" if req.split == "test" else "train"
    if req.split not in ("train", "test", "all"):
        raise DataError(f"unknown split {req.split!r}; allowed: train, test, all")
    clips, facts = moving_digits_clips(split, req.resolution, k, t)
    clips = torch.stack([set_channels(c, req.channels) for c in clips]) if req.channels == 3 else clips
    labels = facts["digits"] @ (10 ** torch.arange(k - 1, -1, -1))  # the digits as one number
    names = [f"{i:0{k}d}" for i in range(10**k)]
    name = "moving-digits" + (f":{arg}" if arg else "")
    return Dataset(name, clips, labels, "video", names, {"frames": t, "digits_per_clip": k, **facts})


# ---------------------------------------------------------------------- video:DIR
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
ANIMATION_EXTENSIONS = (".gif", ".webp", ".mp4")


def read_frames(path: Path, side: int) -> list[torch.Tensor]:
    """The frames of one clip (a folder of images, an animated GIF/WebP, or an MP4), [C, side, side] each."""
    from PIL import Image, ImageSequence

    def tensor(img: Image.Image) -> torch.Tensor:
        a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        return square(torch.from_numpy(a).permute(2, 0, 1), side)

    if path.is_dir():
        return [tensor(Image.open(p)) for p in sorted(path.iterdir()) if p.suffix.lower() in FRAME_EXTENSIONS]
    if path.suffix.lower() == ".mp4":
        from ..extras import require

        require("imageio_ffmpeg", "reading .mp4 clips (or give GIFs or folders of frames)")
        import imageio.v2 as imageio

        with imageio.get_reader(str(path), format="FFMPEG") as reader:
            return [tensor(Image.fromarray(a)) for a in reader]
    with Image.open(path) as img:
        return [tensor(f.copy()) for f in ImageSequence.Iterator(img)]


def find_clips(root: Path) -> list[Path]:
    """The clips of a folder: subfolders holding frames, and animation files."""
    out = []
    for p in sorted(root.iterdir()):
        if p.is_dir() and any(q.suffix.lower() in FRAME_EXTENSIONS for q in p.iterdir()):
            out.append(p)
        elif p.is_file() and p.suffix.lower() in ANIMATION_EXTENSIONS:
            out.append(p)
    return out


@DATASETS.register("video")
def video_folder(req: DataRequest, arg: str = "") -> Dataset:
    """video:PATH, a folder of clips (GIF/WebP/MP4 files, or one subfolder of frames per clip)."""
    check_resolution(req.resolution)
    if req.channels not in (None, 1, 3):
        raise DataError(f"cannot load {req.channels} channels; allowed channels: 1 or 3")
    if not arg:
        raise DataError("video needs a path: video:PATH (a folder of GIFs, MP4s or subfolders of frames)")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise DataError(f"video folder {root} does not exist or is not a folder")
    paths = find_clips(root)
    clips = []
    for p in paths:
        try:
            frames = read_frames(p, req.resolution)
        except (OSError, ValueError, RuntimeError):
            frames = []
        if frames:
            clips.append(frames)
    if not clips:
        raise DataError(f"no readable clip in {root}: expected GIF/WebP/MP4 files or subfolders of frames "
                        f"({', '.join(FRAME_EXTENSIONS)})")
    t = min(FRAMES, min(len(c) for c in clips))
    if t < MIN_FRAMES:
        raise DataError(f"a clip in {root} has {t} frame(s); every clip needs at least {MIN_FRAMES}")
    windows = [torch.stack(c[i : i + t]) for c in clips for i in range(0, len(c) - t + 1, t)]
    x = torch.stack(windows)  # [N, T, 3, R, R]
    channels = req.channels or (1 if bool((x.amax(2) - x.amin(2)).max() < 1e-3) else 3)
    x = torch.stack([set_channels(w, channels) for w in x])
    if req.split not in ("train", "all"):
        x = x[take_split(len(x), req.split, seed=0)]
    say(f"video folder {root}: {len(clips)} clip(s) -> {len(x)} window(s) of {t} frames at {req.resolution} px")
    return Dataset(f"video:{arg}", x.contiguous(), None, "video", [], {"path": str(root), "frames": t})
