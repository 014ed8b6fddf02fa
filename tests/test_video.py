"""Video: moving-digits and video:DIR data, the video GAN's networks, training, sampling clips, serving them."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence
from test_vae_ddpm import _same_training

import ganforge
from ganforge.cli import main
from ganforge.data import DataRequest, load_dataset
from ganforge.data.video import bounce, moving_digits_clips
from ganforge.errors import GanforgeError
from ganforge.sampling import WALK_FPS

TINY_VIDEO = {"recipe": "video", "data": "moving-digits:1:8", "resolution": 16, "batch_size": 4, "net.width": 4,
              "net.z_dim": 8, "steps": 4, "log_every": 2, "sample_every": 2, "checkpoint_every": 2,
              "eval.final_n": 40, "video.conditional": True, "video.whole_pixels": True}  # as the preset


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    return ganforge.train(dict(TINY_VIDEO, out=str(tmp_path_factory.mktemp("video") / "run")), progress=False)


# ------------------------------------------------------------------------------------------------ data
def test_moving_digits_clips_bounce_at_constant_speed_inside_the_canvas():
    clips, facts = moving_digits_clips("train", side=32, frames=16, n=64)
    assert clips.shape == (64, 16, 1, 32, 32) and clips.min() >= 0 and clips.max() <= 1
    pos, sprite = facts["positions"][:, 0], facts["sprite"]
    assert sprite == 16 and pos.min() >= 0 and pos.max() <= 32 - sprite
    step = (pos[:, 1:] - pos[:, :-1]).abs()  # per axis: the speed, except at a bounce
    hit = facts["bounces"][:, 0, 1:, None].expand_as(step)
    spread = step.masked_fill(hit, float("nan")).nan_to_num(-1).amax(1) - step.masked_fill(hit, 1e9).amin(1)
    assert (spread[(~hit).sum(1) > 1] < 1e-4).all(), "between bounces every step is the same length"
    assert facts["bounces"].any(), "some clips bounce within 16 frames"
    again, _ = moving_digits_clips("train", side=32, frames=16, n=64)
    assert torch.equal(clips, again), "clips are fixed, whatever the run's seed"
    # the digit is drawn where the trajectory says: its bright box starts at the rounded position
    r, c = pos[0, 5].round().long().tolist()
    assert clips[0, 5, 0, r : r + sprite, c : c + sprite].sum() == pytest.approx(clips[0, 5].sum().item())


def test_bounce_reflects_off_both_walls():
    p, hit = bounce(torch.tensor([[1.0, 9.0]]), torch.tensor([[-2.0, 2.0]]), 3, 10.0)
    assert p[0].tolist() == [[1.0, 9.0], [1.0, 9.0], [3.0, 7.0]] and hit[0].tolist() == [False, True, False]


def test_test_clips_show_only_held_out_digits():
    from ganforge.data.digits import digits_tensor
    from ganforge.data.images import resize, take_split

    x, y = digits_tensor()
    sprites = resize(x, 16)[:, 0]
    test_idx = set(take_split(len(y), "test", labels=y, seed=0).tolist())
    clips, facts = moving_digits_clips("test", side=32, frames=4, n=20)
    for i in range(20):
        r, c = facts["positions"][i, 0, 0].round().long().tolist()
        crop = clips[i, 0, 0, r : r + 16, c : c + 16]
        match = int(((sprites - crop).abs().flatten(1).amax(1)).argmin())
        assert match in test_idx


def test_moving_digits_dataset_and_its_errors():
    d = load_dataset("moving-digits:2:8", DataRequest(32, split="test"))
    assert d.kind == "video" and d.x.shape == (1024, 8, 1, 32, 32) and d.spec().shape == (8, 1, 32, 32)
    assert d.num_classes == 100 and int(d.y[0]) == int(d.info["digits"][0, 0]) * 10 + int(d.info["digits"][0, 1])
    assert torch.equal(d.to_model(d.x[:2]), d.x[:2] * 2 - 1) and d.spec().from_model(torch.tensor([-3.0])) == 0
    for spec, match in (("moving-digits:0", "1..3"), ("moving-digits:1:2", "4..64"), ("moving-digits:x", "e.g.")):
        with pytest.raises(GanforgeError, match=match):
            load_dataset(spec, DataRequest(32))
    with pytest.raises(GanforgeError, match="at least 16"):
        load_dataset("moving-digits", DataRequest(8))


def _gif(path, frames, size=20):
    pics = [Image.fromarray(np.full((size, size + 4, 3), 12 * i, np.uint8)) for i in range(frames)]
    pics[0].save(path, save_all=True, append_images=pics[1:], duration=50)


def test_video_folder_reads_gifs_and_frame_folders_in_windows(tmp_path):
    _gif(tmp_path / "a.gif", 10)
    _gif(tmp_path / "b.gif", 21)
    (tmp_path / "c").mkdir()
    for i in range(12):
        Image.fromarray(np.full((8, 8, 3), (10 * i, 0, 0), np.uint8)).save(tmp_path / "c" / f"{i:03d}.png")
    d = load_dataset(f"video:{tmp_path}", DataRequest(16))
    # T = min(16, the shortest clip) = 10: a 1 + b 2 + c 1 windows
    assert d.kind == "video" and d.x.shape == (4, 10, 3, 16, 16)
    assert d.x[0, :, 0, 8, 8].tolist() == pytest.approx([12 * i / 255 for i in range(10)], abs=2 / 255)
    grey = load_dataset(f"video:{tmp_path}", DataRequest(16, channels=1))
    assert grey.x.shape[2] == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GanforgeError, match="no readable clip"):
        load_dataset(f"video:{empty}", DataRequest(16))
    _gif(empty / "short.gif", 2)
    with pytest.raises(GanforgeError, match="at least 4"):
        load_dataset(f"video:{empty}", DataRequest(16))


# ------------------------------------------------------------------------------------------------ networks
@pytest.mark.parametrize("layered", [True, False])
def test_generator_draws_clips_of_any_length_and_both_judges_score_them(layered):
    from ganforge.models.video import VideoDiscriminator, VideoGenerator

    torch.manual_seed(0)
    G = VideoGenerator(8, 4, 8, 16, 1, 4, 32, layered=layered)
    z = torch.randn(3, 12)
    x = G(z)
    assert x.shape == (3, 8, 1, 16, 16) and x.abs().max() <= 1
    longer = G(z, t=torch.arange(12.0))
    assert longer.shape == (3, 12, 1, 16, 16)
    G.eval()
    assert torch.allclose(G(z, t=torch.arange(12.0))[:, :8], G(z), atol=1e-5), "the same times draw the same frames"
    frames, clips = VideoDiscriminator(8, 16, 1, 4, 32, per_clip=3)(x)
    assert frames.shape == (3, 3) and clips.shape == (3,)


@pytest.mark.parametrize("sprite", [0, 8])
def test_layered_clips_keep_their_content_by_construction(sprite):
    """A layered clip is one foreground moved around: with the placement network's output held at the identity
    transform, every frame is the same picture. A sprite smaller than the frame sits at its centre on a flat
    background, and a whole-pixel shift moves it exactly."""
    from ganforge.models.video import VideoGenerator

    G = VideoGenerator(8, 4, 6, 16, 1, 4, 32, layered=True, sprite=sprite).eval()
    z = torch.randn(2, 12)
    x = G(z)
    assert (x - x[:, :1]).abs().amax() > 0.01 * x.abs().amax(), "a new generator moves its sprite a little"
    torch.nn.init.zeros_(G.place[-1].weight)
    x = G(z)
    assert torch.allclose(x, x[:, :1].expand_as(x), atol=1e-6)
    if sprite:
        frame = x[:, 0, 0]
        outside = torch.ones(16, 16, dtype=torch.bool)
        outside[4:12, 4:12] = False
        assert torch.allclose(frame[:, outside], frame[:, :1, :1].expand(2, 16, 16)[:, outside], atol=1e-6), \
            "outside the centred 8 px sprite: one background colour per clip"
        with torch.no_grad():
            G.place[-1].bias.copy_(torch.tensor([2 / 16, -4 / 16]))  # 1 px right, 2 px up ([-1, 1] units)
        moved = G(z)[:, 0, 0]
        assert torch.allclose(moved, frame.roll((-2, 1), (1, 2)), atol=1e-5)


@pytest.mark.parametrize("side", [8, 16])
def test_whole_pixel_shifts_paste_the_sprite_unblurred_and_learn_from_the_unrounded_shift(side):
    """``video.whole_pixels``: a shift of 1.3 px right and 2.6 px up lands the foreground 1 px right and 3 px up,
    an exact copy of its pixels (no bilinear blur); the shift's gradient is the bilinear picture's at 1.3 / 2.6,
    the foreground's the pasted picture's."""
    from ganforge.models.video import VideoGenerator

    G = VideoGenerator(8, 4, 6, 16, 1, 4, 32, layered=True, sprite=side, whole_pixels=True)
    soft_G = VideoGenerator(8, 4, 6, 16, 1, 4, 32, layered=True, sprite=side)
    torch.manual_seed(0)
    sprite, weights = torch.rand(1, 2, side, side), torch.rand(2, 16, 16)

    def paste(net, shift_px):
        s, move = sprite.clone().requires_grad_(), torch.tensor([shift_px]).mul(2 / 16).requires_grad_()
        placed = net.paste(s, move, 16)[0]
        (placed * weights).sum().backward()
        return placed, s.grad, move.grad

    placed, sprite_grad, move_grad = paste(G, [1.3, -2.6])
    whole, whole_sprite_grad, _ = paste(soft_G, [1.0, -3.0])
    _, _, soft_move_grad = paste(soft_G, [1.3, -2.6])
    at = (16 - side) // 2
    assert torch.allclose(placed, whole, atol=1e-6) and torch.allclose(sprite_grad, whole_sprite_grad, atol=1e-5)
    if side < 16:
        assert torch.allclose(placed[:, at - 3 : at - 3 + side, at + 1 : at + 1 + side], sprite[0], atol=1e-6)
    assert move_grad.abs().sum() > 0 and torch.allclose(move_grad, soft_move_grad)


def test_a_bounce_path_moves_at_a_constant_speed_between_two_walls():
    """``video.path bounce``: on each axis the shift is one triangle wave, so every step between two reversals is
    the same length and each reversal is at a wall (the walls start where the sprite touches the frame's edges)."""
    import torch.nn.functional as F

    from ganforge.models.video import VideoGenerator

    torch.manual_seed(0)
    G = VideoGenerator(8, 4, 6, 16, 1, 4, 32, layered=True, sprite=8, bounce=True)
    half = G.place.half_range.detach()
    assert torch.allclose(half, torch.full((2,), 0.5)), "a centred 8 px sprite can move 4 px (0.5) either way"
    path = G.place(G.motion(torch.randn(16, 4), torch.arange(200.0))).detach()  # [N, T, 2], 200 frames
    assert path.abs().amax() <= 0.5 + 1e-6
    step = path.diff(dim=1)
    turn = (step[:, 1:] * step[:, :-1]) < 0  # [N, T - 2, 2]
    assert turn.any(1).all(), "in 200 frames every clip reverses on some axis"
    assert (path[:, 1:-1][turn].abs() > 0.5 - step.abs().amax()).all(), "reversals happen at a wall"
    bounced = F.pad(turn, (0, 0, 0, 1)) | F.pad(turn, (0, 0, 1, 0))  # the steps into and out of a reversal
    bounced[:, [0, -1]] = True  # (a reversal within the first or last step may show no turn)
    speed = step.abs().masked_fill(bounced, float("nan"))
    assert torch.allclose(speed.nanmean(1, keepdim=True).expand_as(speed)[~bounced], speed[~bounced], atol=1e-5)


# ------------------------------------------------------------------------------------------------ training and use
def shown_ms(gif) -> int:
    """How long a GIF plays once (Pillow merges identical frames, adding up their durations)."""
    return sum(f.info["duration"] for f in ImageSequence.Iterator(gif))


def test_video_run_trains_samples_and_measures_clips(video_run, tmp_path, capsys):
    g = ganforge.load(video_run)
    clips = g.sample(5, seed=3)
    assert clips.shape == (5, 8, 1, 16, 16) and 0 <= clips.min() and clips.max() <= 1
    assert torch.equal(clips, g.sample(5, seed=3))
    assert g.with_frames(12).sample(2, seed=3).shape == (2, 12, 1, 16, 16)
    g.with_frames(None)
    threes, labels = g.draw(3, seed=1, label=3)  # class-conditional (video.conditional): a clip of a chosen digit
    assert labels.tolist() == [3, 3, 3] and not torch.equal(threes, g.sample(3, seed=1, labels=4))
    report = json.loads((video_run / "run.json").read_text())
    assert report["data"]["kind"] == "video"
    final = [json.loads(line) for line in (video_run / "metrics.jsonl").read_text().splitlines()][-1]
    assert any("identity_kept" in k for k in final), final
    for suffix in (".gif", ".npy", ".png"):
        assert main(["sample", str(video_run), "--n", "4", "--frames", "10", "--out", str(tmp_path / f"c{suffix}")]) \
            == 0
    assert np.load(tmp_path / "c.npy").shape == (4, 10, 1, 16, 16)
    with Image.open(tmp_path / "c.gif") as gif:
        # identical frames (a 4-step generator barely moves) are merged by Pillow; the time shown is 10 frames'
        assert shown_ms(gif) == pytest.approx(10 * 1000 / WALK_FPS, rel=0.1)  # GIF durations: 10 ms units
    assert main(["sample", str(video_run), "--n", "3", "--out", str(tmp_path / "each")]) == 0
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["00000.gif", "00001.gif", "00002.gif"]
    assert main(["interpolate", str(video_run), "--seeds", "1,2", "--frames", "3", "--out",
                 str(tmp_path / "walk.npy")]) == 0
    assert np.load(tmp_path / "walk.npy").shape == (4, 8, 1, 16, 16)
    capsys.readouterr()
    assert main(["eval", str(video_run), "--n", "20", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= measured["identity_kept"] <= 1 and measured["protocol"]["n_fake"] == 20
    assert main(["sample", str(video_run), "--out", str(tmp_path / "x.jpg")]) == 2
    assert "clips.gif" in capsys.readouterr().err


def test_export_writes_a_clip_sampler_that_matches_pytorch(video_run, tmp_path):
    import onnxruntime as ort

    assert main(["export", str(video_run), "--format", "onnx", "--out", str(tmp_path / "v.onnx")]) == 0
    contract = json.loads((tmp_path / "v.onnx.json").read_text())
    assert contract["outputs"][0]["shape"] == ["N", 8, 1, 16, 16]
    g = ganforge.load(video_run)
    z = g.recipe.latent(3, torch.Generator().manual_seed(4), torch.device("cpu"))
    labels = torch.tensor([3, 0, 9])  # the tiny run is class-conditional
    got = ort.InferenceSession(str(tmp_path / "v.onnx")).run(None, {"z": z.numpy(), "labels": labels.numpy()})[0]
    assert np.abs(got - g.synthesize(z, labels).numpy()).max() < 1e-4


def test_a_walk_moves_the_content_and_holds_the_motion(video_run):
    g = ganforge.load(video_run)
    z = g.recipe.latent(3, torch.Generator().manual_seed(0), torch.device("cpu"))
    path = g.recipe.walk(z, torch.arange(4) / 4)
    k = g.recipe.content_dim
    assert path.shape == (9, z.shape[1]) and torch.equal(path[:, k:], z[:1, k:].expand(9, -1))
    assert torch.allclose(path[-1, :k], z[-1, :k]) and not torch.allclose(path[4, :k], z[0, :k])


def test_frames_is_refused_for_image_runs(tiny_run, capsys):
    assert main(["sample", str(tiny_run), "--frames", "8", "--out", "x.png"]) == 2
    assert "--frames is for video runs" in capsys.readouterr().err


def test_video_recipe_refuses_images_and_image_only_options(tmp_path, capsys):
    for sets, match in ((["data=digits"], "needs clips"), (["reg.pack=2"], "reg.r1, reg.lazy_every and reg.mbstd"),
                        (["augment=translation"], "augment"), (["video.sprite=0.3"], "a power of two >= 4 px"),
                        (["video.sprite=0"], "video.sprite"),
                        (["video.path=bounce", "video.transform=affine"], "video.transform shift"),
                        (["video.path=walk"], "waves or bounce")):
        args = ["train", "--recipe", "video", "--out", str(tmp_path / "r"), "--steps", "1"]
        assert main(args + [a for s in sets for a in ("--set", s)]) == 2
        assert match in capsys.readouterr().err


def test_video_training_resumes_exactly(tmp_path):
    """(On the bounce path, which the shared tiny run does not take.)"""
    _same_training(dict(TINY_VIDEO, **{"eval.final_n": 0, "data": "moving-digits:1:4", "video.path": "bounce"}),
                   tmp_path)


def test_serve_returns_looping_gifs_of_clips(video_run):
    from starlette.testclient import TestClient

    from ganforge.demo_page import render
    from ganforge.server import create_app

    g = ganforge.load(video_run)
    with TestClient(create_app(g)) as c:
        info = c.get("/info").json()
        assert info["frames"] == 8 and info["shape"] == [8, 1, 16, 16]
        r = c.post("/generate", json={"n": 4, "seed": 1})
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        with Image.open(io.BytesIO(r.content)) as gif:
            assert shown_ms(gif) == pytest.approx(8 * 1000 / WALK_FPS, rel=0.1)
            assert b"ganforge" in gif.info.get("comment", b"")
        walk = c.post("/interpolate", json={"seeds": [1, 2], "frames": 3})
        assert walk.headers["content-type"] == "image/gif"
        assert "clips" in render(info) and "motion held" in render(info)
