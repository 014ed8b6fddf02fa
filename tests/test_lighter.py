"""Lighter generators: distillation into a narrower G (``ganforge distill``), multiply-adds counted, int8 export."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
from test_translation import CYCLE

import ganforge
from ganforge.cli import main
from ganforge.metrics.cost import cost, macs
from ganforge.recipes import build_recipe
from ganforge.recipes.base import example_inputs
from ganforge.runs import checkpoint as ck
from ganforge.runs.rundir import read_run
from ganforge.train.distill import Distiller, matched_layers, student_config
from ganforge.train.trainer import train

STUDENT = {"steps": 2, "batch_size": 8, "checkpoint_every": 1, "keep_checkpoints": 5, "log_every": 1,
           "eval.final_n": 0}


def weights(run, step=None) -> dict[str, dict[str, torch.Tensor]]:
    path = run / "checkpoints" / f"step-{step:07d}" if step is not None else ck.latest_checkpoint(run)
    return ck.split_weights(ck.load_weights(path))


def test_multiply_adds_are_counted_against_the_formula():
    conv, lin = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(64, 32)
    x = torch.zeros(2, 3, 16, 16)
    assert macs(conv, lambda m: m(x), 2) == 3 * 8 * 9 * 16 * 16  # per image; biases are not multiply-adds
    assert macs(lin, lambda m: m(torch.zeros(5, 64)), 5) == 64 * 32
    assert cost(lin, lambda m: m(torch.zeros(1, 64)), 1)["params"] == 64 * 32 + 32


def test_feature_maps_compared_are_the_last_changed_one_at_each_size():
    teacher = {"a": (32, 4, 4), "b": (32, 4, 4), "c": (1, 4, 4), "d": (16, 8, 8), "e": (1, 16, 16)}
    student = {"a": (16, 4, 4), "b": (16, 4, 4), "c": (1, 4, 4), "d": (8, 8, 8), "e": (1, 16, 16)}
    assert matched_layers(teacher, student) == ["b", "d"]  # not c or e: the narrowing did not change them


def test_a_distilled_student_is_a_normal_run_with_a_narrower_generator(cgan_run, tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["distill", str(cgan_run), "--width", "0.5", "--steps", "2", "--seed", "3", "--out", str(out),
                 "--set", "eval.final_n=0", "--set", "batch_size=8"]) == 0
    said = capsys.readouterr().out
    _, cfg, _ = read_run(out)
    assert (cfg.net.g_width, cfg.net.width, cfg.distill.teacher, cfg.seed) == (4, 8, str(cgan_run), 3)
    made = json.loads((out / "run.json").read_text())["distilled_from"]
    t, s = made["teacher_cost"], made["student_cost"]
    assert s["macs"] <= t["macs"] / 2 and s["params"] < t["params"]  # 8 px: the 1-channel output layer stays
    assert f"({t['macs'] / s['macs']:.1f}x fewer multiply-adds)" in said.replace("\n", " ")
    assert "**Distilled from:**" in (out / "MODEL_CARD.md").read_text()
    g, teacher = ganforge.load(out), ganforge.load(cgan_run)
    assert g.sample(6, seed=1, labels=[0, 1, 2, 3, 4, 5]).shape == teacher.sample(6, seed=1).shape
    w, wt = weights(out), weights(cgan_run)
    assert w["G"]["body.net.0.weight"].shape[1] * 2 == wt["G"]["body.net.0.weight"].shape[1]  # half the channels
    assert {k: v.shape for k, v in w["D"].items()} == {k: v.shape for k, v in wt["D"].items()}  # D keeps its width
    assert set(made["layers"]) and "distill" in w  # the adapters are saved with the run (exact resume)
    assert main(["export", str(out), "--out", str(tmp_path / "s.onnx")]) == 0


def test_distillation_resumes_exactly(cgan_run, tmp_path):
    straight = train(student_config(str(cgan_run), 0.5, **STUDENT, out=str(tmp_path / "a")), progress=False)
    cfg = student_config(str(cgan_run), 0.5, **dict(STUDENT, steps=1), out=str(tmp_path / "b"))
    half = train(cfg, progress=False)
    _, cfg, _ = read_run(half)
    cfg.steps = 2
    resumed = train(cfg, resume=half, progress=False)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for net in a:
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def test_the_pixel_loss_is_zero_for_a_student_that_is_its_teacher(cgan_run):
    cfg = student_config(str(cgan_run), 1.0, **STUDENT)
    cfg.distill.features = 0
    _, _, spec = read_run(cgan_run)
    from ganforge.data.run_data import RunData

    data = RunData.of(cfg).train
    recipe = build_recipe(cfg, spec)
    d = Distiller(cfg, recipe, data, torch.device("cpu"))
    recipe.nets["G"].load_state_dict(d.teacher.state_dict())
    recipe.nets["G"].eval()
    run = example_inputs(recipe, data, 4, torch.device("cpu"))
    from ganforge.recipes.base import StepContext

    x, y = data.to_model(data.x[:4]), data.y[:4]
    loss, stats = d.loss(StepContext(0, 4, lambda: (x, y), torch.Generator().manual_seed(0)))
    assert float(stats["Distill/pixel"]) == 0.0 and float(loss) == 0.0
    assert run(recipe.nets["G"]).shape == (4, *spec.shape)


def test_the_distillation_weight_fades_out_at_its_fraction_of_the_steps(cgan_run):
    from ganforge.data.run_data import RunData
    from ganforge.recipes.base import StepContext

    cfg = student_config(str(cgan_run), 0.5, ["distill.fade=0.5"], **dict(STUDENT, steps=8))
    data = RunData.of(cfg).train
    d = Distiller(cfg, build_recipe(cfg, data.spec()), data, torch.device("cpu"))
    x, y = data.to_model(data.x[:4]), data.y[:4]

    def at(step: int) -> tuple[float, float]:
        loss, stats = d.loss(StepContext(step, 4, lambda: (x, y), torch.Generator().manual_seed(0)))
        return float(loss), float(stats["Distill/pixel"])

    (l0, p0), (l2, p2), (l4, p4) = at(0), at(2), at(4)
    assert p0 == p2 == p4 > 0  # the same inputs: the same distance, weighted 1, 1/2, 0
    assert l2 == pytest.approx(l0 / 2) and l4 == 0


@pytest.mark.parametrize("teacher", ["sg_run", "sr_run"])
def test_students_of_stylegan2_and_esrgan_train_and_sample(teacher, request, tmp_path):
    source = request.getfixturevalue(teacher)
    steps = 3 if teacher == "sr_run" else 1  # ESRGAN: past its 2 PSNR-stage steps
    run = train(student_config(str(source), 0.5, **dict(STUDENT, steps=steps), out=str(tmp_path / "s")),
                progress=False)
    made = json.loads((run / "run.json").read_text())["distilled_from"]
    assert made["student_cost"]["macs"] < made["teacher_cost"]["macs"] and made["layers"]
    assert ganforge.load(run).net is not None
    _, cfg, _ = read_run(run)
    if teacher == "sr_run":  # RRDB's dense blocks narrow with it (their growth), D does not
        assert (cfg.net.g_width, cfg.sr.growth, cfg.net.width) == (4, 2, 8)


def test_an_inheriting_student_starts_with_the_teachers_mapping_network(sg_run, tmp_path):
    cfg = student_config(str(sg_run), 0.5, ["distill.inherit=true"], **dict(STUDENT, steps=1), out=str(tmp_path / "s"))
    run = train(cfg, progress=False)
    start, teacher = weights(run, 0), weights(sg_run)
    mapping = [k for k in teacher["G_ema"] if k.startswith("mapping.")]
    assert mapping and all(torch.equal(start[net][k], teacher["G_ema"][k]) for k in mapping for net in ("G", "G_ema"))
    assert start["G"]["synthesis.const"].shape != teacher["G_ema"]["synthesis.const"].shape  # narrower: its own
    assert json.loads((run / "run.json").read_text())["distilled_from"]["inherited"] >= len(mapping)


def test_a_cyclegan_student_learns_both_directions(tmp_path):
    teacher = ganforge.train(dict(CYCLE, steps=1, out=str(tmp_path / "t")), progress=False)
    run = train(student_config(str(teacher), 0.5, **dict(STUDENT, steps=1, batch_size=2), out=str(tmp_path / "s")),
                progress=False)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("Distill/pixel" in r for r in log)
    assert ganforge.load(run).translate(torch.rand(1, 1, 16, 16), direction="BtoA") is not None


def test_distill_refuses_bad_widths_and_runs_without_a_discriminator(cgan_run, vae_run, capsys):
    assert main(["distill", str(cgan_run), "--width", "0"]) == 2
    assert "--width 0.0 is not allowed; expected a fraction in (0, 1]" in capsys.readouterr().err
    assert main(["distill", str(vae_run), "--width", "0.5"]) == 2
    assert "distillation is for GAN runs" in capsys.readouterr().err


def test_an_int8_export_runs_close_to_pytorch(cgan_run, sr_run, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    assert main(["export", str(cgan_run), "--int8", "--out", str(out)]) == 0
    contract = json.loads((tmp_path / "q.onnx.json").read_text())
    assert contract["precision"].startswith("int8") and contract["parity"]["mean_abs_diff"] <= 0.02
    import onnx

    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    z = np.random.default_rng(0).standard_normal((3, 8)).astype("float32")
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"z": z, "labels": np.arange(3)})[0]
    assert got.shape == (3, 1, 8, 8) and 0 <= got.min() and got.max() <= 1
    assert main(["export", str(sr_run), "--int8", "--out", str(tmp_path / "u.onnx")]) == 0  # dynamic height, width
    assert main(["export", str(cgan_run), "--int8", "--format", "torchscript", "--out", str(tmp_path / "q.pt")]) == 2
    assert "--int8 is for --format onnx" in capsys.readouterr().err
