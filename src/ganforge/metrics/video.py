"""Offline measures of generated clips ``[N, T, C, H, W]`` in [0, 1] against real clips (no downloaded weights).

For moving-digits clips (one digit sprite of side ``H // 2`` moving at constant velocity and
bouncing off the walls, :mod:`ganforge.data.video`) each frame's digit is found, cut out and judged:

* motion (:func:`track`, :func:`motion_measures`): the digit's centre per frame is the centroid of
  the frame's intensity above a floor of 0.2 (faint background noise weighs nothing). From it:
  ``speed`` (mean px/frame away from reversals), ``speed_cv`` (per clip, the coefficient of variation of the
  frame-to-frame speed away from direction reversals; mean over clips), ``reversals_per_clip``
  (per-axis sign flips of the displacement where both steps exceed 0.5 px), ``bounce_ok`` (share of
  those reversals that happen at the wall the digit moved toward: its centre within sprite/2 + 3 px
  of the canvas edge) and ``still`` (share of clips whose whole path is under 2 px). Lengths are
  given at 32 px and scaled with the side. Real clips are drawn at whole-pixel positions, so their
  frame-to-frame speed varies by itself (``speed_cv`` about 0.27 at 32 px): compare a generator
  with the real value, not with 0.
* content (:func:`crops`, :func:`content_measures`): a sprite-sized window around each tracked
  centre is classified by ganforge's digits classifier (:mod:`.digits_classifier`): ``confident``
  (share of frames with top probability >= 0.9, the threshold of :mod:`.classes`),
  ``identity_kept`` (share of clips whose argmax digit is the same in every frame), the clips'
  majority digits and their shares.
* frames (:func:`frame_features`, :func:`frame_measures`): fd (all frames), precision, recall and
  coverage (one random frame per clip) of the crops in the ``digits`` feature space (the classifier's
  128-d penultimate layer, as for the digits data); for other video, of whole frames in the
  ``random-cnn`` space. Frame measures judge each picture alone: shuffled, frozen or flickering clips
  made of real frames score as real here, and only the motion measures and ``clip_fd`` catch them.
* clips (:func:`clip_features`, :func:`clip_fd`): the Fréchet distance of features of a small
  spatio-temporal network (:class:`ClipNet`, shipped as ``assets/clip_features.safetensors``), trained
  on the moving-digits train clips only to tell each clip's digit and the sprite's position in every
  frame (``benchmarks/train_clip_features.py`` retrains it). It takes exactly the moving-digits
  clips ``[N, 16, 1, 32, 32]``; other sizes and lengths are refused, never resized.

:func:`video_metrics` puts them together as one flat dict of floats.
"""
from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import GanforgeError
from .classes import CONFIDENCE, class_kl
from .digits_classifier import ASSET_NAME, NUM_CLASSES, classify
from .frechet import frechet_distance
from .prdc import prdc

if TYPE_CHECKING:
    from ..data.base import Dataset

Tensor = torch.Tensor

FLOOR = 0.2  # intensity ignored when tracking: faint noise does not pull the centroid
REFERENCE_SIDE = 32  # the lengths below are in pixels at this side and scale with the canvas
MIN_STEP = 0.5  # both displacements of a reversal exceed this (px)
WALL_TOLERANCE = 3.0  # a reversal is at the wall when the centre is within sprite/2 + this of it (px)
STILL_PATH = 2.0  # a clip whose whole path is shorter than this (px) is still
PRDC_K = 5
PRDC_CLIPS = 4096  # clips (one frame each) compared by precision / recall / coverage at most
SUBSET_SEED = 0

CLIP_ASSET = "clip_features"
CLIP_FRAMES, CLIP_SIDE = 16, 32
CLIP_FEATURE_DIM = 64
CLIP_ARCH = (
    "conv3d 3x3x3 (1->8, stride 1,2,2)-BN-ReLU, conv3d (8->16, stride 1,2,2)-BN-ReLU, "
    "conv3d (16->32, stride 2,2,2)-BN-ReLU, conv3d (32->32, stride 2,2,2)-BN-ReLU, "
    f"flatten (32x4x2x2), linear(512->{CLIP_FEATURE_DIM})-ReLU ({CLIP_FEATURE_DIM}-d features); heads: "
    f"linear({CLIP_FEATURE_DIM}->10) digit, linear({CLIP_FEATURE_DIM}->{2 * CLIP_FRAMES}) sprite position in "
    f"every frame; input grey clips [16, 32, 32] in [0, 1]"
)


# --------------------------------------------------------------------------- shapes


def check_clips(clips: Tensor, what: str = "video metrics") -> Tensor:
    """``clips`` as float32 on CPU, or a GanforgeError when they are not ``[N, T >= 3, 1|3, S, S]``."""
    if not isinstance(clips, Tensor) or clips.dim() != 5 or clips.shape[2] not in (1, 3) or clips.shape[1] < 3 \
            or clips.shape[-1] != clips.shape[-2] or clips.shape[-1] < 8 or len(clips) == 0:
        shape = tuple(clips.shape) if isinstance(clips, Tensor) else type(clips).__name__
        raise GanforgeError(f"{what}: expected clips [N, T, 1|3, S, S] in [0, 1] with N >= 1, T >= 3, S >= 8; "
                            f"got {shape}")
    return clips.detach().to("cpu", torch.float32)


def _grey(clips: Tensor) -> Tensor:
    """[N, T, C, H, W] -> [N, T, H, W] (ITU-R 601 luma for RGB)."""
    if clips.shape[2] == 1:
        return clips[:, :, 0]
    w = torch.tensor([0.299, 0.587, 0.114], dtype=clips.dtype).view(1, 1, 3, 1, 1)
    return (clips * w).sum(2)


# --------------------------------------------------------------------------- motion


def track(clips: Tensor, floor: float = FLOOR) -> Tensor:
    """(row, col) centre of the bright mass in every frame ``[N, T, 2]`` (pixel indices; NaN for a dark frame).

    The centroid of the intensity above ``floor``: a digit moved by whole pixels moves its centroid
    by exactly as much, and background below the floor weighs nothing.
    """
    x = (_grey(check_clips(clips, "track")) - floor).clamp_min(0).double()
    mass = x.sum((-1, -2))
    rows = (x.sum(-1) * torch.arange(x.shape[-2], dtype=x.dtype)).sum(-1) / mass
    cols = (x.sum(-2) * torch.arange(x.shape[-1], dtype=x.dtype)).sum(-1) / mass
    pos = torch.stack([rows, cols], -1)
    return torch.where((mass > 1e-6)[..., None], pos, torch.nan).float()


def reversals(positions: Tensor, min_step: float = MIN_STEP) -> Tensor:
    """Direction reversals ``[N, T - 2, 2]`` (bool): at frame t + 1, axis a, the displacement changed sign
    and both displacements exceed ``min_step``."""
    d = positions[:, 1:] - positions[:, :-1]
    before, after = d[:, :-1], d[:, 1:]
    return (before * after < 0) & (before.abs() > min_step) & (after.abs() > min_step)  # NaN compares False


def motion_measures(clips: Tensor, side: int | None = None) -> dict[str, float]:
    """``speed``, ``speed_cv``, ``reversals_per_clip``, ``bounce_ok`` and ``still`` of single-digit clips.

    ``side``: the canvas side (default: the clips' width); the sprite is ``side // 2``. NaN where a
    measure has nothing to measure (``bounce_ok`` without reversals, ``speed_cv`` when every clip is still).
    """
    clips = check_clips(clips, "motion measures")
    side = int(side or clips.shape[-1])
    scale = side / REFERENCE_SIDE
    pos = track(clips).double()
    d = pos[:, 1:] - pos[:, :-1]  # [N, T - 1, 2]
    steps = d.norm(dim=-1)  # [N, T - 1]; NaN next to a dark frame
    rev = reversals(pos, MIN_STEP * scale)  # [N, T - 2, 2]

    # at the wall the digit moved toward: centre within sprite/2 + tolerance of that edge
    here, toward_low = pos[:, 1:-1], d[:, :-1] < 0
    to_wall = torch.where(toward_low, here + 0.5, side - 0.5 - here)
    at_wall = to_wall <= side // 2 / 2 + WALL_TOLERANCE * scale
    n_rev = int(rev.sum())

    # speed away from reversals: the steps into and out of a reversal frame are left out
    near = torch.zeros_like(steps, dtype=torch.bool)
    turned = rev.any(-1)
    near[:, :-1] |= turned
    near[:, 1:] |= turned
    kept = torch.where(near, torch.nan, steps)
    count = (~kept.isnan()).sum(1)
    mean = kept.nansum(1) / count
    std = ((kept - mean[:, None]).square().nansum(1) / count).sqrt()
    moving = (count >= 2) & (mean > MIN_STEP * scale)
    path = steps.nansum(1)
    return {
        "speed": float(kept.nanmean()) if bool((count > 0).any()) else float("nan"),
        "speed_cv": float((std / mean)[moving].mean()) if bool(moving.any()) else float("nan"),
        "reversals_per_clip": n_rev / len(clips),
        "bounce_ok": float(at_wall[rev].double().mean()) if n_rev else float("nan"),
        "still": float((path < STILL_PATH * scale).double().mean()),
    }


# --------------------------------------------------------------------------- content


def crops(clips: Tensor, centres: Tensor | None = None) -> Tensor:
    """Sprite-sized windows ``[N, T, 1, S // 2, S // 2]`` (grey) around each frame's tracked centre
    (``centres`` [N, T, 2] from :func:`track` unless given; a dark frame is cut at the canvas centre);
    beyond the canvas is black."""
    clips = check_clips(clips, "crops")
    x = _grey(clips)
    n, t, side = x.shape[0], x.shape[1], x.shape[-1]
    s = side // 2
    c = track(clips) if centres is None else centres.detach().cpu().float()
    c = torch.where(c.isnan(), (side - 1) / 2, c)
    top = (c - (s - 1) / 2).round().long().clamp(-s, side)  # [N, T, 2]
    padded = F.pad(x, (s, s, s, s))
    rows = (top[..., 0, None] + s + torch.arange(s))[..., :, None]  # [N, T, s, 1]
    cols = (top[..., 1, None] + s + torch.arange(s))[..., None, :]  # [N, T, 1, s]
    ni = torch.arange(n)[:, None, None, None]
    ti = torch.arange(t)[None, :, None, None]
    return padded[ni, ti, rows, cols].unsqueeze(2)


def judge(clips: Tensor, classifier: str = ASSET_NAME) -> tuple[Tensor, Tensor, Tensor]:
    """The digits classifier on every frame's crop: ``(logits [N, T, 10], features [N, T, 128], lit [N, T])``;
    ``lit`` is False for a dark frame (nothing above the tracking floor: no digit to judge).

    The crops are resized to the classifier's 16 px by :func:`.digits_classifier.to_classifier_input`
    (at 32 px they are 16 px already, the size the classifier was trained on)."""
    centres = track(clips)
    c = crops(clips, centres)
    logits, feats = classify(c.flatten(0, 1), name=classifier)
    return logits.reshape(*c.shape[:2], -1), feats.reshape(*c.shape[:2], -1), ~centres.isnan().any(-1)


def _content(logits: Tensor, lit: Tensor) -> dict[str, Any]:
    top, pred = logits.double().softmax(-1).max(-1)  # [N, T]
    pred = torch.where(lit, pred, -1)  # a dark frame shows no digit
    votes = (F.one_hot(pred.clamp_min(0), NUM_CLASSES) * lit[..., None]).sum(1)  # [N, 10]
    majority = torch.where(votes.sum(1) > 0, votes.argmax(1), -1)
    return {
        "confident": float(((top >= CONFIDENCE) & lit).double().mean()),
        "identity_kept": float(((pred == pred[:, :1]).all(1) & (pred[:, 0] >= 0)).double().mean()),
        "digit_shares": torch.bincount(majority[majority >= 0], minlength=NUM_CLASSES).double() / len(majority),
        "majority": majority,
    }


def content_measures(clips: Tensor, classifier: str = ASSET_NAME) -> dict[str, Any]:
    """``confident`` and ``identity_kept`` (floats), ``digit_shares`` ([10], the shares of the clips'
    majority digits) and ``majority`` ([N] int64, each clip's most frequent frame digit; -1 for a dark clip)
    of single-digit clips. A dark frame is neither confident nor any digit.

    ``classifier``: the name of a shipped digits classifier (``digits_classifier``)."""
    return _content(*judge(clips, classifier)[::2])


# --------------------------------------------------------------------------- frames


def frame_features(clips: Tensor, space: str = "digits") -> Tensor:
    """Per-frame features ``[N, T, d]``: ``digits`` - the digits classifier's 128-d features of each
    frame's sprite crop; ``random-cnn`` - ganforge's fixed random CNN (256-d) on whole frames."""
    clips = check_clips(clips, "frame features")
    if space == "digits":
        return judge(clips)[1]
    if space == "random-cnn":
        from .features import create_extractor

        return create_extractor(space)(clips.flatten(0, 1)).unflatten(0, clips.shape[:2])
    raise GanforgeError(f"frame feature space {space!r} is not allowed; allowed: digits, random-cnn")


def _subset(n: int, m: int, seed: int = SUBSET_SEED) -> Tensor:
    """A fixed random ``m`` of ``range(n)`` (all of it when m >= n), sorted."""
    if m >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:m].sort().values


def _one_frame_each(feats: Tensor, m: int, seed: int) -> Tensor:
    """One random frame's features from each of a fixed random ``m`` of the clips: ``[m, d]``."""
    g = torch.Generator().manual_seed(seed)
    clips = _subset(len(feats), m, seed)
    return feats[clips, torch.randint(feats.shape[1], (len(clips),), generator=g)]


def frame_scores(fake: Tensor, real: Tensor, max_clips: int = PRDC_CLIPS) -> dict[str, float]:
    """From frame features ``[N, T, d]`` and ``[M, T', d]``: ``frame_fd`` over all frames, and
    ``frame_precision`` / ``recall`` / ``coverage`` (k = 5) over one random frame of each of equally
    many fake and real clips (at most ``max_clips``; NaN with 5 clips or fewer).

    One frame per clip: a clip's frames are near copies of each other (a real clip's crops are
    identical), so with all of them every frame's nearest neighbours would be its own clip's frames.
    """
    m = min(len(fake), len(real), max_clips)
    if m > PRDC_K:
        scores = prdc(_one_frame_each(real, m, SUBSET_SEED), _one_frame_each(fake, m, SUBSET_SEED + 1), PRDC_K)
    else:  # too few clips for 5 nearest neighbours
        scores = dict.fromkeys(("precision", "recall", "coverage"), float("nan"))
    return {"frame_fd": frechet_distance(fake.flatten(0, 1), real.flatten(0, 1)),
            **{f"frame_{k}": scores[k] for k in ("precision", "recall", "coverage")}}


def frame_measures(fake: Tensor, real: Tensor, space: str = "digits") -> dict[str, float]:
    """Frame fd / precision / recall / coverage of ``fake`` clips against ``real`` clips in ``space``."""
    return frame_scores(frame_features(fake, space), frame_features(real, space))


# --------------------------------------------------------------------------- clip network


def _block3d(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class ClipNet(nn.Module):
    """~81k-parameter 3-D CNN on grey clips ``[N, 16, 1, 32, 32]``; ``forward`` returns
    ``(digit logits [N, 10], sprite positions [N, 16, 2] scaled to [-1, 1], features [N, 64])``.

    Time is kept whole through the first two layers (motion between neighbouring frames), then
    halved twice; the last maps are flattened rather than pooled, so the features keep where the
    digit is in each part of the clip.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _block3d(1, 8, (1, 2, 2)), _block3d(8, 16, (1, 2, 2)),  # [16, 32, 32] -> [16, 8, 8]
            _block3d(16, 32, (2, 2, 2)), _block3d(32, 32, (2, 2, 2)),  # -> [4, 2, 2]
            nn.Flatten(), nn.Linear(32 * 4 * 2 * 2, CLIP_FEATURE_DIM), nn.ReLU(inplace=True),
        )
        self.digit = nn.Linear(CLIP_FEATURE_DIM, NUM_CLASSES)
        self.position = nn.Linear(CLIP_FEATURE_DIM, 2 * CLIP_FRAMES)

    def forward(self, clips: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        feats = self.body(clips.transpose(1, 2) * 2 - 1)  # [N, C=1, T, H, W]
        return self.digit(feats), self.position(feats).view(-1, CLIP_FRAMES, 2), feats


def check_clip_input(clips: Tensor) -> Tensor:
    """``clips`` as float32 on CPU, or a GanforgeError unless they are ``[N >= 1, 16, 1, 32, 32]``."""
    want = (CLIP_FRAMES, 1, CLIP_SIDE, CLIP_SIDE)
    if not isinstance(clips, Tensor) or clips.dim() != 5 or tuple(clips.shape[1:]) != want or len(clips) == 0:
        shape = tuple(clips.shape) if isinstance(clips, Tensor) else type(clips).__name__
        raise GanforgeError(f"clip features take moving-digits clips [N, {CLIP_FRAMES}, 1, {CLIP_SIDE}, {CLIP_SIDE}] "
                            f"(16 frames, 1 channel, 32 px; no resizing); got {shape}")
    return clips.detach().to("cpu", torch.float32)


def _asset(name: str) -> Any:
    return resources.files("ganforge") / "assets" / name


@functools.lru_cache(maxsize=1)
def load_clip_net() -> ClipNet:
    """The shipped, trained clip network (eval mode, no grad, CPU), loaded once per process."""
    from safetensors.torch import load

    asset = _asset(f"{CLIP_ASSET}.safetensors")
    if not asset.is_file():
        raise GanforgeError(f"clip network weights missing ({CLIP_ASSET}.safetensors in ganforge/assets); "
                            "rebuild them with: python benchmarks/train_clip_features.py")
    net = ClipNet()
    net.load_state_dict(load(asset.read_bytes()))
    return net.eval().requires_grad_(False)


def clip_card() -> dict:
    """The JSON card written next to the clip network's weights (accuracy, seed, architecture, recipe)."""
    return json.loads(_asset(f"{CLIP_ASSET}.json").read_text())


@torch.no_grad()
def clip_features(clips: Tensor, batch_size: int = 256) -> Tensor:
    """The clip network's 64-d features ``[N, 64]`` of moving-digits clips ``[N, 16, 1, 32, 32]``."""
    clips = check_clip_input(clips)
    net = load_clip_net()
    return torch.cat([net(clips[i : i + batch_size])[2] for i in range(0, len(clips), batch_size)])


def clip_fd(fake: Tensor, real: Tensor) -> float:
    """Fréchet distance between the clip features of ``fake`` and ``real`` clips ``[N, 16, 1, 32, 32]``."""
    return frechet_distance(clip_features(fake), clip_features(real))


# --------------------------------------------------------------------------- all together


def is_moving_digits(real: Dataset | Tensor) -> bool:
    """Whether the digit measures apply: a one-digit, one-channel moving-digits Dataset, or 1-channel clips."""
    if isinstance(real, Tensor):
        return real.dim() == 5 and real.shape[2] == 1
    return real.name.startswith("moving-digits") and real.info.get("digits_per_clip") == 1 and real.x.shape[2] == 1


def video_metrics(fake: Tensor, real: Dataset | Tensor, n: int = 1024, seed: int = SUBSET_SEED,
                  moving_digits: bool | None = None) -> dict[str, float]:
    """Every video measure that applies, as one flat dict of floats.

    ``fake``: the first ``n`` generated clips are used; ``real``: a video Dataset or clips, of which a
    fixed random ``n`` (``seed``) are the reference. ``moving_digits`` (default: :func:`is_moving_digits`)
    says whether the clips are one-digit moving-digits clips; then the result holds ``frame_fd``,
    ``frame_precision``, ``frame_recall``, ``frame_coverage`` (digit crops), ``confident``,
    ``identity_kept``, ``digit_kl`` (KL of the fake clips' majority-digit shares from the real ones'),
    ``digits_present``, ``speed``, ``speed_cv``, ``reversals_per_clip``, ``bounce_ok``, ``still`` and, for
    ``[*, 16, 1, 32, 32]`` clips, ``clip_fd``. Other video gets the four frame measures on whole frames
    (random-cnn space).
    """
    real_x = real if isinstance(real, Tensor) else getattr(real, "x", real)
    fake, real_x = check_clips(fake, "video metrics"), check_clips(real_x, "video metrics")
    if fake.shape[1:] != real_x.shape[1:]:
        raise GanforgeError(f"generated clips [T, C, H, W] = {tuple(fake.shape[1:])} differ from the real clips' "
                            f"{tuple(real_x.shape[1:])}")
    if n < 2:
        raise GanforgeError(f"video metrics need n >= 2 clips; got n={n}")
    fake, real_x = fake[:n], real_x[_subset(len(real_x), n, seed)]
    digits = is_moving_digits(real) if moving_digits is None else moving_digits
    if not digits:
        return frame_scores(frame_features(fake, "random-cnn"), frame_features(real_x, "random-cnn"))

    fake_logits, fake_feats, fake_lit = judge(fake)
    real_logits, real_feats, real_lit = judge(real_x)
    out = frame_scores(fake_feats, real_feats)
    content, real_content = _content(fake_logits, fake_lit), _content(real_logits, real_lit)
    out["confident"], out["identity_kept"] = content["confident"], content["identity_kept"]
    shown = content["majority"][content["majority"] >= 0]
    out["digit_kl"] = class_kl(F.one_hot(shown, NUM_CLASSES).double(), real_content["digit_shares"]) \
        if len(shown) else float("nan")
    out["digits_present"] = float((content["digit_shares"] > 0).sum())
    out.update(motion_measures(fake))
    if tuple(fake.shape[1:]) == (CLIP_FRAMES, 1, CLIP_SIDE, CLIP_SIDE):
        out["clip_fd"] = clip_fd(fake, real_x)
    return out
