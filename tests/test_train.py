import json

import pytest
import torch
from conftest import loss_log

import ganforge
from ganforge.errors import TrainingDiverged
from ganforge.losses import AdversarialLoss
from ganforge.recipes import resolve
from ganforge.runs import checkpoint as ck
from ganforge.train.logger import read_log
from ganforge.train.trainer import Trainer


def weights_of(run_dir):
    return ck.load_weights(ck.latest_checkpoint(run_dir))


def test_dcgan_trains_and_writes_a_complete_run_dir(tiny):
    run = ganforge.train(tiny, progress=False)
    for name in ("config.yaml", "run.json", "metrics.jsonl", "report.md", "losses.png", "samples/final.png",
                 "samples/step-0000002.png", "checkpoints/latest.json"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 4]  # two log intervals, then the final measurement
    assert {"Loss/D", "Loss/G", "D/accuracy", "Timing/img_per_s", "Progress/kimg"} <= set(records[0])
    assert {"Metrics/fd", "Metrics/precision", "Metrics/recall", "Metrics/coverage"} <= set(records[-1])
    report = (run / "report.md").read_text()
    for measure in ("fd (lower is better)", "precision (quality)", "recall (diversity)", "coverage (diversity)",
                    "1000 samples (EMA generator) against 1437 of the digits (train split), features: digits"):
        assert measure in report
    w = weights_of(run)
    assert any(k.startswith("G_ema.") for k in w) and any(k.startswith("D.") for k in w)
    assert json.loads((run / "checkpoints/latest.json").read_text())["step"] == 4


@pytest.mark.parametrize("data, shape", [("ring8", (2,)), ("digits", (1, 8, 8))])
def test_vanilla_on_points_and_flattened_images(tmp_path, data, shape):
    for loss in ("minimax", "nonsaturating"):
        run = ganforge.train({"recipe": "vanilla", "data": data, "resolution": 8, "steps": 3, "batch_size": 16,
                              "net.width": 16, "loss": loss, "out": str(tmp_path / loss)}, progress=False)
        x = ganforge.load(run).sample(5, seed=0)
        assert x.shape == (5, *shape) and torch.isfinite(x).all()
        if len(shape) == 3:
            assert 0 <= x.min() and x.max() <= 1


def test_sample_is_seeded_and_in_data_space(tiny_run):
    g = ganforge.load(tiny_run)
    a, b, c = g.sample(6, seed=1), g.sample(6, seed=1), g.sample(6, seed=2)
    assert a.shape == (6, 1, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.allclose(g.sample(6, seed=1, batch_size=2), a, atol=1e-6)  # batching does not change the draw


def test_resume_is_exact(tmp_path):
    base = {"resolution": 8, "batch_size": 8, "net.width": 8, "net.z_dim": 8, "log_every": 2, "checkpoint_every": 3}
    straight = ganforge.train(dict(base, steps=8, out=str(tmp_path / "a")), progress=False)
    half = ganforge.train(dict(base, steps=4, out=str(tmp_path / "b")), progress=False)
    resumed = ganforge.train({"steps": 8}, resume=half, progress=False)
    wa, wb = weights_of(straight), weights_of(resumed)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    sa, sb = ck.load_state(ck.latest_checkpoint(straight)), ck.load_state(ck.latest_checkpoint(resumed))
    assert sa["counters"]["step"] == sb["counters"]["step"] == 8
    for k in sa["optimizers"]["G"]["state"]:
        assert torch.equal(sa["optimizers"]["G"]["state"][k]["exp_avg"], sb["optimizers"]["G"]["state"][k]["exp_avg"])
    log_b, log_a = [r["Loss/G"] for r in loss_log(resumed)], [r["Loss/G"] for r in loss_log(straight)]
    assert log_a == log_b  # the loss curve is reproduced too


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tiny):
    cfg = resolve(dict(tiny, steps=8, log_every=1, **{"health.nan_retries": 0}))
    trainer = Trainer(cfg, progress=False)
    good = trainer.recipe.loss

    def d_loss(real, fake):
        bad = trainer.state.step >= 3
        return good.d(real, fake) * (float("nan") if bad else 1.0)

    trainer.recipe.loss = AdversarialLoss(d_loss, good.g)
    message = r"Loss/D became NaN/Inf near step 4; kept the last good checkpoint \(step 2\)"
    with pytest.raises(TrainingDiverged, match=message):
        trainer.fit()
    w = weights_of(trainer.run_dir)
    assert json.loads((trainer.run_dir / "checkpoints/latest.json").read_text())["step"] == 2
    assert all(torch.isfinite(t).all() for t in w.values() if t.is_floating_point())


def test_checkpoint_files_are_not_pickles(tiny):
    run = ganforge.train(tiny, progress=False)
    ckpt = ck.latest_checkpoint(run)
    assert sorted(p.name for p in ckpt.iterdir()) == ["manifest.json", "state.json", "state.safetensors",
                                                     "weights.safetensors"]
    state = ck.load_state(ckpt)
    assert isinstance(state["optimizers"]["D"]["param_groups"][0]["lr"], float)
    assert state["noise_gen"].dtype == torch.uint8


def test_huge_learning_rate_triggers_rollbacks_then_gives_up(tmp_path, capsys):
    cfg = resolve({"data": "ring8", "steps": 30, "batch_size": 16, "net.width": 8, "log_every": 1,
                   "checkpoint_every": 5, "optim.lr_d": 1e30, "optim.lr_g": 1e30, "health.nan_retries": 2,
                   "out": str(tmp_path / "run")})
    trainer = Trainer(cfg, progress=False)
    with pytest.raises(TrainingDiverged, match=r"after 2 rollback\(s\) with lower learning rates"):
        trainer.fit()
    err = capsys.readouterr().err
    assert "rolled back to step 0, learning rates x0.5 (retry 1/2)" in err
    assert "learning rates x0.25 (retry 2/2)" in err
    log = read_log(trainer.run_dir)
    assert [r["Health/lr_scale"] for r in log if "Health/lr_scale" in r] == [0.5, 0.25]


def test_rollback_recovers_from_a_transient_nan(tiny):
    cfg = resolve(dict(tiny, steps=6, log_every=1))
    trainer = Trainer(cfg, progress=False)
    good, fired = trainer.recipe.loss, []

    def d_loss(real, fake):
        if trainer.state.step == 3 and not fired:
            fired.append(1)
            return good.d(real, fake) * float("nan")
        return good.d(real, fake)

    trainer.recipe.loss = AdversarialLoss(d_loss, good.g)
    run = trainer.fit()
    assert trainer.state.step == 6 and trainer.state.rollbacks == 1 and trainer.state.lr_scale == 0.5
    assert "1 NaN rollback(s)" in (run / "report.md").read_text()


def test_constant_generator_triggers_the_collapse_warning(tiny, capsys):
    cfg = resolve(dict(tiny, steps=6, log_every=2, **{"ema.enabled": False, "health.start": 4}))
    trainer = Trainer(cfg, progress=False)
    G = trainer.recipe.nets["G"]
    forward = G.forward
    G.forward = lambda z: forward(torch.zeros_like(z))  # every latent gives the same image
    run = trainer.fit()
    log = loss_log(run)
    assert all(r["Health/diversity"] < 0.01 for r in log)
    assert [r.get("Health/collapse") for r in log] == [None, 1.0, 1.0]  # not judged before health.start
    report, err = (run / "report.md").read_text(), capsys.readouterr().err
    assert "collapse in 2/3 checks" in report and "collapse in 2/3 checks" in err
    for text in (report, err, (run / "report.html").read_text()):  # what it means and what to try, with keys
        assert "G draws too few distinct outputs" in text and "--set reg.mbstd=4" in text
