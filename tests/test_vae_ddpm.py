"""The alternatives to GANs: the VAE and DDPM recipes, and ``ganforge compare``."""
import json
import math

import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.errors import ConfigError, GanforgeError
from ganforge.runs import checkpoint as ck

TINY_VAE = {"recipe": "vae", "resolution": 8, "batch_size": 8, "net.width": 8, "net.z_dim": 4, "steps": 6,
            "log_every": 1, "sample_every": 3, "checkpoint_every": 3, "eval.final_n": 0}
TINY_DDPM = {"recipe": "ddpm", "resolution": 8, "batch_size": 8, "diffusion.channels": "8,16",
             "diffusion.attention": "0,1", "diffusion.sample_steps": 3, "steps": 6, "log_every": 1,
             "sample_every": 3, "checkpoint_every": 3, "eval.final_n": 0}


@pytest.fixture(scope="module")
def runs(tiny_run, vae_run, ddpm_run):
    """Tiny trained runs: a DCGAN, a VAE and a DDPM on 8 px digits (the session's, read-only)."""
    return {"dcgan": tiny_run, "vae": vae_run, "ddpm": ddpm_run}


def _same_training(cfg, tmp_path):
    """Weights and loss log of a run trained straight through vs. stopped halfway and resumed."""
    straight = ganforge.train(dict(cfg, out=str(tmp_path / "a")), progress=False)
    half = ganforge.train(dict(cfg, steps=cfg["steps"] // 2, out=str(tmp_path / "b")), progress=False)
    resumed = ganforge.train({"steps": cfg["steps"]}, resume=half, progress=False)
    wa, wb = ck.load_weights(ck.latest_checkpoint(straight)), ck.load_weights(ck.latest_checkpoint(resumed))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    logs = []
    for run in (straight, resumed):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        logs.append([{k: v for k, v in r.items() if k.startswith("Loss/")} for r in rows if "step" in r])
    assert logs[0] == logs[1] and logs[0]


# ---------------------------------------------------------------------------------------------- VAE
def test_vae_kl_and_likelihoods_match_reference_formulas():
    from torch.distributions import Bernoulli, Normal, kl_divergence

    from ganforge.config import TrainConfig
    from ganforge.data import DataSpec
    from ganforge.recipes.vae import VAE, gaussian_kl

    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(3), torch.ones(3))).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), ref, atol=1e-5)

    spec = DataSpec("digits", "image", (1, 8, 8))
    x = torch.rand(4, 1, 8, 8) * 2 - 1  # model space
    raw = torch.randn(4, 1, 8, 8)
    bern = VAE(TrainConfig(recipe="vae", resolution=8), spec)
    G = bern.nets["G"]
    bce = Bernoulli(logits=raw, validate_args=False)  # continuous targets in [0, 1], as BCE takes them
    ref = -bce.log_prob((x + 1) / 2).flatten(1).sum(1)
    assert torch.allclose(bern.nll(G, raw, x), ref, atol=1e-4)
    cfg = TrainConfig(recipe="vae", resolution=8)
    cfg.vae.likelihood, cfg.vae.sigma = "gaussian", 0.3
    gauss = VAE(cfg, spec)
    ref = -Normal(torch.tanh(raw), 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gauss.nll(gauss.nets["G"], raw, x), ref, atol=1e-4)
    assert not any(p is gauss.nets["G"].log_sigma for p in gauss.nets["G"].parameters()), "a fixed sigma is a buffer"


def test_vae_kl_warmup_ramps_to_beta():
    from ganforge.config import TrainConfig
    from ganforge.data import DataSpec
    from ganforge.recipes.vae import VAE

    cfg = TrainConfig(recipe="vae", resolution=8, steps=100)
    cfg.vae.beta, cfg.vae.warmup = 2.0, 0.1
    r = VAE(cfg, DataSpec("digits", "image", (1, 8, 8)))
    assert [r.kl_weight(s) for s in (0, 5, 10, 50)] == [0.0, 1.0, 2.0, 2.0]


def test_vae_resumes_exactly_and_draws_reconstructions(tmp_path):
    _same_training(TINY_VAE, tmp_path)
    samples = tmp_path / "a" / "samples"
    assert (samples / "final-reconstructions.png").is_file() and (samples / "final.png").is_file()
    log = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in log if "Loss/nelbo" in r)
    assert first["Loss/nelbo"] == pytest.approx(first["Loss/nll"] + first["Loss/kl"], rel=1e-5)
    assert "Loss/G" not in first, "no adversarial loss for the health monitor to misread"


# --------------------------------------------------------------------------------------------- DDPM
def test_cosine_schedule_matches_nichol_dhariwal():
    from ganforge.config import TrainConfig
    from ganforge.data import DataSpec
    from ganforge.recipes.ddpm import DDPM

    cfg = TrainConfig(recipe="ddpm", resolution=8)
    cfg.diffusion.channels, cfg.diffusion.attention = "8,16", "0,0"
    abar = DDPM(cfg, DataSpec("digits", "image", (1, 8, 8))).alphas_cumprod(torch.device("cpu"))
    T, s = 1000, 0.008
    t = torch.arange(1, T + 1, dtype=torch.float64)
    f = lambda u: torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    ref = f(t) / f(torch.zeros(()))
    assert torch.allclose(abar[:900].double(), ref[:900], rtol=1e-3)  # beyond, betas are capped at 0.999
    assert abar[-1] < 1e-4 and torch.all(abar[1:] < abar[:-1])


def test_ddpm_resumes_exactly(tmp_path):
    _same_training(TINY_DDPM, tmp_path)


def test_ddpm_samplers_are_reproducible_and_labelled(runs):
    g = ganforge.load(runs["ddpm"])
    a, b = g.sample(4, seed=3, labels=2), g.sample(4, seed=3, labels=2)
    assert a.shape == (4, 1, 8, 8) and torch.equal(a, b), "DDIM (eta 0) is deterministic for a seed"
    assert not torch.equal(a, g.sample(4, seed=4, labels=2))
    assert not torch.equal(a, g.sample(4, seed=3, labels=5)), "the class changes the sample"
    ddpm = ganforge.load(runs["ddpm"]).with_sampler("ddpm", 7)
    assert ddpm.recipe.sampler_name == "ddpm-7"
    c = ddpm.sample(4, seed=3)
    assert torch.equal(c, ddpm.sample(4, seed=3))
    assert torch.allclose(c, ddpm.sample(4, seed=3, batch_size=3), atol=1e-3), "image i's noise comes from z_i"
    assert not torch.equal(c, ddpm.sample(4, seed=5))
    with pytest.raises(GanforgeError, match="expected 1 to 1000"):
        g.with_sampler("ddim", 1001)
    with pytest.raises(GanforgeError, match="ddim, ddpm"):
        g.with_sampler("euler")
    with pytest.raises(ConfigError, match="pure noise"):
        g.sample(2, seed=0, truncation=0.5)


def test_sample_cli_steps_and_sampler(runs, tmp_path, capsys):
    assert main(["sample", str(runs["ddpm"]), "--n", "2", "--sampler", "ddpm", "--steps", "4", "--out",
                 str(tmp_path / "x.npy")]) == 0
    assert main(["sample", str(runs["dcgan"]), "--steps", "4", "--out", str(tmp_path / "y.npy")]) == 2
    assert "are for ddpm runs" in capsys.readouterr().err
    assert main(["train", "--recipe", "ddpm", "--set", "diffusion.attention=0,1", "--dry-run"]) == 0
    assert main(["train", "--recipe", "ddpm", "--resolution", "8", "--set", "diffusion.attention=0,1",
                 "--steps", "1"]) == 2
    assert "names 2 levels" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ compare
def test_compare_measures_every_run_by_one_protocol(runs, tmp_path, capsys):
    out = tmp_path / "cmp" / "table.md"
    code = main(["compare", str(runs["dcgan"]), str(runs["vae"]), str(runs["ddpm"]), "--n", "20",
                 "--samplers", "ddim-2,ddpm-12", "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = {r["name"]: r for r in result["rows"]}
    assert list(rows) == ["dcgan", "vae", "ddpm (ddim-2)", "ddpm (ddpm-12)"]
    for r in rows.values():
        assert r["fd"] >= 0 and 0 <= r["coverage"] <= 1 and r["images_per_s_b256"] > 0 and r["train_cpu_s"] > 0
        assert r["steps"] > 0 and r["peak_memory_mb"] > 0
        assert 0 <= r["mem_copies"] <= 1 and r["mem_ratio"] > 0  # memorisation beside quality
    assert rows["vae"]["params_sampling"] < rows["vae"]["params_trained"], "a VAE samples with its decoder only"
    assert rows["ddpm (ddpm-12)"]["ms_per_image_b1"] > rows["ddpm (ddim-2)"]["ms_per_image_b1"]
    assert result["protocol"]["n_fake"] == 20 and "scaled" in result["protocol"]["speed"]
    text = out.read_text()
    assert "| ddpm (ddpm-12) | ddpm | ddpm-12 |" in text and "Protocol: 20 samples" in text
    assert out.with_suffix(".png").is_file() and out.with_suffix(".json").is_file()


def test_compare_spread_over_seeds_and_refusals(runs, tmp_path, capsys):
    from ganforge.compare import compare, parse_samplers

    other = ganforge.train(dict(TINY_VAE, seed=1, steps=3, out=str(tmp_path / "vae1")), progress=False)
    result = compare([runs["vae"], other], n=20, progress=False)
    (spread,) = result["stability"]
    assert spread["group"] == "vae" and spread["runs"] == 2
    fds = [r["fd"] for r in result["rows"]]
    assert spread["fd"]["mean"] == pytest.approx(sum(fds) / 2)
    assert spread["fd"]["std"] == pytest.approx(abs(fds[0] - fds[1]) / math.sqrt(2))

    wider = ganforge.train(dict(TINY_VAE, resolution=16, steps=1, out=str(tmp_path / "vae16")), progress=False)
    with pytest.raises(GanforgeError, match=r"of \[1, 8, 8\] but .* of \[1, 16, 16\]"):
        compare([runs["vae"], wider], n=20, progress=False)
    with pytest.raises(GanforgeError, match="SAMPLER-STEPS"):
        parse_samplers("ddim50")
    assert main(["compare", str(runs["vae"]), "--out", str(tmp_path / "x.txt")]) == 2
    assert "expected FILE.md" in capsys.readouterr().err
