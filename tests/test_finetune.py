"""Fine-tuning (``--init-from``, FreezeD) and the runs shipped inside the package (``pretrained:NAME``)."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY

import ganforge
from ganforge.cli import main
from ganforge.errors import ConfigError, GanforgeError
from ganforge.recipes import build_recipe, resolve
from ganforge.runs import checkpoint as ck
from ganforge.runs.rundir import pretrained_names, read_run


def weights(run) -> dict[str, dict[str, torch.Tensor]]:
    return ck.split_weights(ck.load_weights(ck.latest_checkpoint(run)))


def test_a_fine_tuned_run_starts_from_the_source_weights_and_records_it(cgan_run, tmp_path):
    out = tmp_path / "ft"
    run = ganforge.train({"init_from": str(cgan_run), "steps": 2, "checkpoint_every": 1, "keep_checkpoints": 5,
                          "batch_size": 8, "eval.final_n": 0, "out": str(out)}, progress=False)
    src = weights(cgan_run)
    start = ck.split_weights(ck.load_weights(run / "checkpoints" / "step-0000000"))
    for name in ("G", "D", "G_ema"):
        assert all(torch.equal(start[name][k], src[name][k]) for k in src[name]), name
    assert not torch.equal(weights(run)["G"]["body.net.0.weight"], src["G"]["body.net.0.weight"])  # then it trains
    assert json.loads((run / "run.json").read_text())["init_from"] == {"run": str(cgan_run), "step": 4}
    assert f"**Fine-tuned from:** `{cgan_run}` at step 4" in (run / "MODEL_CARD.md").read_text()
    cfg = resolve({"init_from": str(cgan_run)})  # the source's networks by default
    assert (cfg.recipe, cfg.resolution, cfg.net.width) == ("cgan", 8, 8)


def test_freeze_d_keeps_the_first_layers_and_trains_the_rest(cgan_run, tmp_path):
    run = ganforge.train({"init_from": str(cgan_run), "freeze_d": 2, "steps": 3, "batch_size": 8,
                          "eval.final_n": 0, "out": str(tmp_path / "fd")}, progress=False)
    from ganforge.train.finetune import weight_layers

    D = build_recipe(resolve({"init_from": str(cgan_run)}), read_run(cgan_run)[2]).nets["D"]
    names = {id(p): n for n, p in D.named_parameters()}
    frozen = [names[id(p)] for m in weight_layers(D)[:2] for p in m.parameters(recurse=False)]
    before, after = weights(cgan_run)["D"], weights(run)["D"]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in after if k not in frozen)
    with pytest.raises(ConfigError, match=r"freeze_d=99 is not allowed; D has \d+ weight layers"):
        ganforge.train({"init_from": str(cgan_run), "freeze_d": 99, "steps": 1, "out": str(tmp_path / "x")},
                       progress=False)


def test_mismatched_networks_are_refused_naming_the_first_mismatch(cgan_run, tiny_run, tmp_path):
    with pytest.raises(ConfigError, match=r"G does not fit \(.* is \[.*\] there and \[.*\] here\)"):
        ganforge.train({"init_from": str(cgan_run), "net.width": 16, "steps": 1, "out": str(tmp_path / "a")},
                       progress=False)
    assert not (tmp_path / "a").exists()  # refused before anything is written
    with pytest.raises(ConfigError, match="is a dcgan run and this is cgan; fine-tuning needs the same networks"):
        ganforge.train(dict(TINY, init_from=str(tiny_run), recipe="cgan", out=str(tmp_path / "b")), progress=False)
    assert main(["train", "--init-from", str(tmp_path / "nowhere"), "--steps", "1"]) == 2


def test_pretrained_runs_ship_with_the_package_and_load_everywhere(tmp_path, capsys):
    assert {"digits", "stylegan2-digits", "digits-unlabelled"} <= set(pretrained_names())
    g = ganforge.load("pretrained:digits")
    assert g.sample(4, seed=1).shape == (4, 1, 16, 16)
    assert main(["sample", "pretrained:digits", "--n", "4", "--label", "3", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["list", "pretrained"]) == 0
    listing = capsys.readouterr().out
    assert "pretrained:digits" in listing and "fd" in listing and "pretrained:stylegan2-digits" in listing
    assert main(["sample", "pretrained:digitz", "--n", "1", "--out", str(tmp_path / "t.png")]) == 2
    assert "no pretrained run 'digitz' (did you mean 'digits'?)" in capsys.readouterr().err
    with pytest.raises(GanforgeError):
        ganforge.load("pretrained:nothing")


def test_a_fine_tuned_run_with_freeze_d_resumes_exactly(cgan_run, tmp_path):
    base = {"init_from": str(cgan_run), "freeze_d": 1, "batch_size": 8, "checkpoint_every": 3, "eval.final_n": 0}
    straight = ganforge.train(dict(base, steps=6, out=str(tmp_path / "a")), progress=False)
    half = ganforge.train(dict(base, steps=3, out=str(tmp_path / "b")), progress=False)
    resumed = ganforge.train({"steps": 6}, resume=half, progress=False)
    wa, wb = weights(straight), weights(resumed)
    for net in wa:
        assert all(torch.equal(wa[net][k], wb[net][k]) for k in wa[net]), net
    assert json.loads((resumed / "run.json").read_text())["init_from"]["run"] == str(cgan_run)  # kept on resume
