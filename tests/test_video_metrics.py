"""The video measures (metrics/video.py) on real moving-digits clips, broken clips and hand-made ones."""
from __future__ import annotations

import math

import pytest
import torch

from ganforge.data.video import moving_digits_clips
from ganforge.errors import GanforgeError
from ganforge.metrics import frechet_distance
from ganforge.metrics import video as V

N = 200


@pytest.fixture(scope="module")
def real():
    """200 test clips (unseen digits) and their facts."""
    return moving_digits_clips("test", n=N)


@pytest.fixture(scope="module")
def train_clips():
    return moving_digits_clips("train", n=N)[0]


def broken(clips: torch.Tensor) -> dict[str, torch.Tensor]:
    """Frames shuffled (one order per clip), frozen (first frame repeated), flicker (every frame from any clip)."""
    g = torch.Generator().manual_seed(0)
    n, t = clips.shape[:2]
    order = torch.argsort(torch.rand(n, t, generator=g), 1)
    return {"shuffled": clips[torch.arange(n)[:, None], order],
            "frozen": clips[:, :1].expand_as(clips).contiguous(),
            "flicker": clips.flatten(0, 1)[torch.randperm(n * t, generator=g)].view_as(clips)}


def square_clip(cols: list[float], rows: list[float] | None = None, side: int = 32, size: int = 16) -> torch.Tensor:
    """One clip [1, T, 1, side, side]: a white ``size`` square with its top-left at (rows[t], cols[t])."""
    rows = rows or [8] * len(cols)
    clip = torch.zeros(1, len(cols), 1, side, side)
    for t, (r, c) in enumerate(zip(rows, cols)):
        clip[0, t, 0, int(r) : int(r) + size, int(c) : int(c) + size] = 1.0
    return clip


def test_real_clips_move_like_the_data(real):
    clips, facts = real
    m = V.motion_measures(clips, 32)
    assert m["bounce_ok"] > 0.98 and m["still"] == 0.0
    assert 1.3 < m["speed"] < 1.7  # speeds are drawn from 1..2 px / frame
    assert m["speed_cv"] < 0.35  # whole-pixel rendering alone gives ~0.27
    assert 0.5 < m["reversals_per_clip"] < 2
    # the tracked centre follows the true sprite position (up to the digit's own centroid offset, constant per clip)
    offset = V.track(clips) - facts["positions"][:, 0].round()
    assert (offset - offset[:, :1]).abs().max() < 1e-3


def test_faint_noise_does_not_move_the_tracker(real):
    clips = real[0]
    noise = 0.15 * torch.rand(clips.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(V.track(torch.where(clips > 0, clips, noise)), V.track(clips))  # background below the floor
    noisy, clean = V.motion_measures((clips + noise).clamp(0, 1)), V.motion_measures(clips)  # noise on the digit too
    assert all(abs(noisy[k] - clean[k]) < 0.02 for k in clean)


def test_real_clips_keep_their_digit(real):
    clips, facts = real
    c = V.content_measures(clips)
    assert c["identity_kept"] > 0.9 and c["confident"] > 0.9
    assert (c["majority"] == facts["digits"][:, 0]).double().mean() > 0.95
    assert c["digit_shares"].shape == (10,) and abs(float(c["digit_shares"].sum()) - 1) < 1e-9


def test_frozen_clips_are_still_and_shuffled_ones_move_badly(real):
    clips = real[0]
    ok = V.motion_measures(clips)
    bad = broken(clips)
    frozen = V.motion_measures(bad["frozen"])
    assert frozen["still"] == 1.0 and frozen["speed"] == 0.0 and frozen["reversals_per_clip"] == 0
    shuffled = V.motion_measures(bad["shuffled"])
    assert shuffled["bounce_ok"] < ok["bounce_ok"] - 0.3
    assert shuffled["speed_cv"] > ok["speed_cv"] + 0.05
    assert shuffled["reversals_per_clip"] > 5 * ok["reversals_per_clip"]
    assert V.content_measures(bad["flicker"])["identity_kept"] < 0.1


def test_a_known_constant_velocity_gives_its_speed():
    clip = square_clip(cols=[2 + 2 * t for t in range(7)], rows=[3 + t for t in range(7)])  # (1, 2) px / frame
    m = V.motion_measures(clip)
    assert m["speed"] == pytest.approx(math.sqrt(5)) and m["speed_cv"] == pytest.approx(0, abs=1e-6)
    assert m["reversals_per_clip"] == 0 and m["still"] == 0 and math.isnan(m["bounce_ok"])
    assert V.track(clip)[0, :, 1].tolist() == pytest.approx([9.5 + 2 * t for t in range(7)])


def test_reversals_at_a_wall_and_in_mid_air():
    wall = V.motion_measures(square_clip(cols=[6, 4, 2, 0, 2, 4, 6]))
    assert wall["reversals_per_clip"] == 1 and wall["bounce_ok"] == 1.0
    mid = V.motion_measures(square_clip(cols=[2, 4, 6, 8, 6, 4, 2]))  # turns 8 px away from the right wall
    assert mid["reversals_per_clip"] == 1 and mid["bounce_ok"] == 0.0


def test_dark_clips_show_no_digit():
    dark = torch.zeros(3, 8, 1, 32, 32)
    c = V.content_measures(dark)
    assert c["confident"] == 0 and c["identity_kept"] == 0 and c["majority"].tolist() == [-1] * 3
    assert V.motion_measures(dark)["still"] == 1.0


def test_clip_fd_is_small_for_real_clips_and_large_for_broken_ones(real, train_clips):
    # calibration at n = 200 (recorded): real ~6.6, frozen ~28, shuffled ~37, flicker ~180
    clips = real[0]
    ref = V.clip_features(train_clips)
    fd = {k: frechet_distance(V.clip_features(v), ref) for k, v in {"real": clips, **broken(clips)}.items()}
    assert fd["real"] < 12
    for name in ("shuffled", "frozen", "flicker"):
        assert fd[name] > 3 * fd["real"], (name, fd)
    card = V.clip_card()
    assert card["test"]["digit_accuracy"] > 0.95 and card["parameters"] < 100_000


def test_video_metrics_is_one_flat_dict(real, train_clips):
    m = V.video_metrics(real[0], train_clips, n=100)
    assert set(m) == {"frame_fd", "frame_precision", "frame_recall", "frame_coverage", "confident", "identity_kept",
                      "digit_kl", "digits_present", "speed", "speed_cv", "reversals_per_clip", "bounce_ok", "still",
                      "clip_fd"}
    assert all(isinstance(v, float) for v in m.values())
    assert m["frame_fd"] < 5 and m["frame_precision"] > 0.7 and m["identity_kept"] > 0.9
    assert m["clip_fd"] < 15


def test_other_video_gets_what_applies():
    g = torch.Generator().manual_seed(0)
    fake, ref = torch.rand(12, 6, 3, 24, 24, generator=g), torch.rand(20, 6, 3, 24, 24, generator=g)
    m = V.video_metrics(fake, ref, n=12)
    assert set(m) == {"frame_fd", "frame_precision", "frame_recall", "frame_coverage"}
    small = V.video_metrics(torch.rand(10, 8, 1, 48, 48), torch.rand(10, 8, 1, 48, 48), n=4)  # no clip_fd, no PRDC
    assert "clip_fd" not in small and "speed" in small and math.isnan(small["frame_precision"])


@pytest.mark.parametrize("bad", [torch.rand(4, 16, 32, 32), torch.rand(4, 2, 1, 32, 32), torch.rand(4, 16, 2, 32, 32),
                                 torch.rand(4, 16, 1, 32, 24), torch.rand(0, 16, 1, 32, 32)])
def test_wrong_shapes_are_refused_in_one_line(bad):
    with pytest.raises(GanforgeError, match=r"video metrics: expected clips \[N, T, 1\|3, S, S\]"):
        V.video_metrics(bad, bad)


def test_clip_fd_takes_only_its_own_clips():
    with pytest.raises(GanforgeError, match=r"\[N, 16, 1, 32, 32\]"):
        V.clip_fd(torch.rand(4, 16, 1, 64, 64), torch.rand(4, 16, 1, 64, 64))
    with pytest.raises(GanforgeError, match=r"\[N, 16, 1, 32, 32\]"):
        V.clip_features(torch.rand(4, 8, 1, 32, 32))
    with pytest.raises(GanforgeError, match="differ from the real clips'"):
        V.video_metrics(torch.rand(4, 16, 1, 32, 32), torch.rand(4, 8, 1, 32, 32))
