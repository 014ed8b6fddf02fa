"""Projection of real images (ganforge project), latent directions and edits (ganforge directions / edit)."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.inference import inversion
from ganforge.inference.perceptual import DigitsPerceptual, RandomCNNPerceptual


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- the pieces against their formulas
def test_learning_rate_schedule_warms_up_holds_and_ramps_down():
    peak = 0.1
    assert inversion.lr_at(0.0, peak) == 0.0
    assert inversion.lr_at(0.025, peak) == pytest.approx(peak * 0.5)  # half-way through the 5 % warm-up
    assert inversion.lr_at(0.5, peak) == pytest.approx(peak)
    t = 0.875  # half-way through the 25 % cosine ramp-down: (1 - t) / 0.25 = 0.5 -> 0.5 - 0.5 cos(pi / 2)
    assert inversion.lr_at(t, peak) == pytest.approx(peak * 0.5)
    assert inversion.lr_at(1.0, peak) == pytest.approx(0.0, abs=1e-12)


def test_noise_regularizer_is_small_for_white_noise_and_large_for_smooth_maps():
    gen = torch.Generator().manual_seed(0)
    white = [torch.randn(2, 1, 16, 16, generator=gen)]
    smooth = [torch.ones(2, 1, 16, 16)]
    assert inversion.noise_regularizer(white).max() < 0.02
    # a constant map correlates perfectly with its shifts: 2 terms per scale, 16 and 8 px
    assert inversion.noise_regularizer(smooth).tolist() == pytest.approx([4.0, 4.0])


def test_psnr_matches_its_formula():
    a = torch.zeros(1, 1, 4, 4)
    b = torch.full((1, 1, 4, 4), 0.1)
    assert float(inversion.psnr(a, b)[0]) == pytest.approx(10 * math.log10(1 / 0.01))


@pytest.mark.parametrize("make", [DigitsPerceptual, RandomCNNPerceptual])
def test_perceptual_distance_is_zero_on_itself_symmetric_and_differentiable(make):
    d = make()
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 1, 16, 16, generator=gen), torch.rand(3, 1, 16, 16, generator=gen)
    assert d(a, a).abs().max() < 1e-6
    assert torch.allclose(d(a, b), d(b, a))
    assert (d(a, b) > 0.01).all()
    a.requires_grad_(True)
    d(a, b).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


# ---------------------------------------------------------------- projection
def test_a_generated_image_is_found_again_and_a_batch_projects_each_image_as_alone(sg_run):
    g = ganforge.load(sg_run)
    start = g.seed_latent(3)
    target = g.sample(1, seed=3)
    found = g.project(target, steps=60, noise=False, frames=4)
    assert isinstance(found, list) and found[0].psnr > 25  # from the mean w to the sample's w
    assert found[0].space == "w" and found[0].latent.shape == start.latent.shape
    assert found[0].walk.shape == (4, *g.spec.shape)
    assert found[0].losses[-1] < found[0].losses[0]
    pair = g.project(torch.cat([g.sample(1, seed=5), target]), steps=60, noise=False, frames=4)
    assert torch.allclose(pair[1].latent, found[0].latent, atol=1e-5)


def test_projection_into_z_tries_every_class_of_a_conditional_generator(cgan_run):
    g = ganforge.load(cgan_run)
    target = g.sample(1, seed=2, labels=7)
    p = g.project(target[0], steps=20, frames=2)
    assert p.space == "z" and p.label in range(10) and p.noise is None
    assert torch.allclose(g.render(p.latent[None], "z", p.label)[0], p.image, atol=1e-5)


def test_seed_latent_renders_the_sample_of_that_seed(sg_run, tiny_run):
    for run in (sg_run, tiny_run):
        g = ganforge.load(run)
        start = g.seed_latent(4)
        assert torch.allclose(start.image, g.sample(1, seed=4)[0], atol=1e-5)
        assert torch.allclose(g.edit(start, "pc0", [0.0])[0], start.image, atol=1e-5)


def test_the_encoder_start_guesses_better_than_the_mean_and_is_kept_with_the_run(tmp_path, monkeypatch, sg_run):
    import shutil

    from ganforge.inference import encoder

    run = tmp_path / "run"
    shutil.copytree(sg_run, run)
    monkeypatch.setattr(encoder, "STEPS", 300)
    g = ganforge.load(run)
    starts = [g.seed_latent(s) for s in range(50, 58)]
    w = torch.cat([s.latent for s in starts])
    enc = encoder.encoder_for(g.recipe, g.net, g.spec, "w", run)
    assert (run / "inversion-encoder-w.safetensors").is_file()
    guess = enc(torch.stack([s.image for s in starts]))
    assert (guess - w).square().mean() < (w.mean(0) - w).square().mean()  # better than one shared start
    monkeypatch.setattr(encoder, "train_encoder", lambda *a, **k: pytest.fail("trained again"))
    again = encoder.encoder_for(g.recipe, g.net, g.spec, "w", run)
    assert torch.equal(again(starts[0].image[None]), enc(starts[0].image[None]))
    p = g.project(starts[0].image, steps=3, init="encoder", frames=2)
    assert p.space == "w"


# ---------------------------------------------------------------- directions
def test_directions_of_a_conditional_generator_point_to_its_class_means(sg_run):
    from ganforge.inference.directions import find_directions
    from ganforge.inference.drawing import latents

    g = ganforge.load(sg_run)
    found = g.directions()
    names = [d.name for d in found]
    k = min(10, g.net.mapping.w_dim)  # as many principal directions as w has dimensions, at most 10
    assert names[:10] == [f"class-{i}" for i in range(10)] and names[10:] == [f"pc{i}" for i in range(k)]
    z, labels = latents(g.recipe, g.spec, 4000, 0, None, None, "cpu")
    w = g.net.w(z, labels).detach()
    offset = w[labels == 3].mean(0) - w.mean(0)
    three = found[3]
    assert torch.allclose(three.vector * three.unit, offset, atol=1e-4)
    pcs = torch.stack([d.vector for d in found[10:]])
    assert torch.allclose(pcs @ pcs.T, torch.eye(k), atol=1e-4)  # orthonormal principal directions
    assert [d.unit for d in found[10:]] == sorted((d.unit for d in found[10:]), reverse=True)
    assert [d.name for d in find_directions(g.recipe, g.net, g.spec, seed=0)] == names


def test_an_edit_moves_w_by_strength_times_unit(sg_run):
    g = ganforge.load(sg_run)
    start = g.seed_latent(1)
    d = g.directions()[12]
    from ganforge.inference.directions import edit_latents

    moved = edit_latents(g.net, start.latent, d, [0.0, 2.0])
    assert torch.allclose(moved[1] - moved[0], (2 * d.unit * d.vector).expand_as(moved[0]), atol=1e-5)
    only_fine = edit_latents(g.net, start.latent, d, [2.0], layers="fine")[0]
    changed = (only_fine - start.latent).abs().sum(1) > 0
    assert only_fine.shape == (g.net.num_ws, start.latent.shape[1]) and changed.sum() < g.net.num_ws


# ---------------------------------------------------------------- the commands
def test_project_then_edit_from_the_command_line(tmp_path, capsys, sg_run):
    g = ganforge.load(sg_run)
    img = (g.sample(1, seed=9)[0, 0].numpy() * 255).astype(np.uint8)
    Image.fromarray(img).resize((32, 32)).save(tmp_path / "digit.png")  # larger than the run: fitted
    code, out, err = run_cli(capsys, "project", sg_run, "--image", tmp_path / "digit.png", "--out", tmp_path / "p",
                             "--steps", "10")
    assert code == 0, err
    assert "PSNR" in out
    meta = json.loads((tmp_path / "p" / "projection.json").read_text())
    assert meta["space"] == "w" and meta["steps"] == 10 and "digits classifier" in meta["loss"]
    assert np.load(tmp_path / "p" / "latent.npy").shape == (1, 8)
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"projection.png", "latent.npy", "noise.npz",
                                                            "projection.json", "walk.gif"}
    code, out, err = run_cli(capsys, "edit", sg_run, "--latent", tmp_path / "p" / "latent.npy", "--direction",
                             "class-2", "--strength", "0,1", "--out", tmp_path / "e.npy")
    assert code == 0, err
    edited = torch.from_numpy(np.load(tmp_path / "e.npy"))
    start = ganforge.editing.read_latent(g, tmp_path / "p" / "latent.npy")  # noise maps read back
    assert edited.shape == (2, *g.spec.shape)
    assert torch.allclose(edited[0], start.image, atol=1e-5)
    recorded = Image.open(tmp_path / "p" / "projection.png")
    assert recorded.size[0] > recorded.size[1]  # target | projection


def test_directions_command_lists_and_draws(tmp_path, capsys, tiny_run):
    code, out, err = run_cli(capsys, "directions", tiny_run, "--out", tmp_path / "d.png", "--seeds", "1,2")
    assert code == 0, err
    assert "principal component 0 of the images, in z" in out
    w, h = Image.open(tmp_path / "d.png").size
    assert h > w  # 10 directions x 2 seeds rows, 7 strengths each


def test_a_folder_projects_into_one_subfolder_per_image(tmp_path, capsys, tiny_run):
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), 60 * i + 30, np.uint8)).save(src / f"im{i}.png")
    code, out, err = run_cli(capsys, "project", tiny_run, "--image", src, "--out", tmp_path / "p", "--steps", "3")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["im0", "im1"]
    assert np.load(tmp_path / "p" / "im0" / "latent.npy").shape == (8,)


@pytest.mark.parametrize("args, message", [
    (["project", "{tiny}", "--image", "{img}", "--out", "{tmp}/p", "--space", "w"],
     "--space w: a dcgan generator has no intermediate latent w; use --space z"),
    (["project", "{sg}", "--image", "{img}", "--out", "{tmp}/p", "--space", "q"], "--space 'q': expected one of w"),
    (["project", "{tiny}", "--image", "{tmp}/none.png", "--out", "{tmp}/p"], "--image '"),
    (["project", "{tiny}", "--image", "{img}", "--out", "{tmp}/p", "--steps", "0"], "--steps 0 is not allowed"),
    (["project", "{tiny}", "--image", "{img}", "--out", "{tmp}/p", "--init", "best"], "--init 'best': expected one "
     "of mean, encoder"),
    (["project", "{ddpm}", "--image", "{img}", "--out", "{tmp}/p"], "projection needs a one-pass generator"),
    (["project", "{sr}", "--image", "{img}", "--out", "{tmp}/p"], "use ganforge upscale"),
    (["edit", "{sg}", "--direction", "pc0", "--out", "{tmp}/e.png"], "edit needs one start"),
    (["edit", "{sg}", "--seed", "1", "--direction", "nope", "--out", "{tmp}/e.png"],
     "--direction 'nope' is not one of this run's directions: class-0"),
    (["edit", "{sg}", "--seed", "1", "--direction", "pc0", "--strength", "a,b", "--out", "{tmp}/e.png"],
     "--strength 'a,b': expected numbers"),
    (["edit", "{sg}", "--seed", "1", "--direction", "pc0", "--out", "{tmp}/e.jpg"], "expected one of FILE.gif"),
    (["edit", "{sg}", "--latent", "{tmp}/bad.npy", "--direction", "pc0", "--out", "{tmp}/e.png"],
     "has shape [3]; this run's latents are w: [1, 8]"),
])
def test_bad_input_gets_one_line(tmp_path, capsys, tiny_run, sg_run, ddpm_run, sr_run, args, message):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "img.png")
    np.save(tmp_path / "bad.npy", np.zeros(3, np.float32))
    fill = {"tiny": tiny_run, "sg": sg_run, "ddpm": ddpm_run, "sr": sr_run, "img": tmp_path / "img.png",
            "tmp": tmp_path}
    code, out, err = run_cli(capsys, *[a.format(**fill) for a in args])
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
