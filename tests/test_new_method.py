"""Proof by addition: a method written only in its own files (here, one test file standing in for
``models/<name>.py`` and ``recipes/<name>.py``) trains, resumes, loads, samples, is measured and exports,
with its own config section and default data, without the trainer, config.py or the CLI learning its name."""
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

import ganforge
from ganforge.config import CHECKS, SECTIONS, config_section
from ganforge.errors import ConfigError
from ganforge.recipes import RECIPES, Phase, Recipe, resolve
from ganforge.recipes.base import truncated_normal

NAME = "tinyhinge"


@pytest.fixture(scope="module")
def tiny_method():
    """Registers the method as its own file would at import, and removes it afterwards."""

    @config_section("tinyhinge", {"margin": (lambda v: v > 0, "a number > 0")})
    @dataclass
    class TinyHingeConfig:
        margin: float = 1.0  # the hinge's margin

    class Mlp(nn.Sequential):
        def __init__(self, i: int, o: int, width: int) -> None:
            super().__init__(nn.Linear(i, width), nn.LeakyReLU(0.2), nn.Linear(width, o))

    @RECIPES.register(NAME)
    class TinyHinge(Recipe):
        """A two-layer hinge-loss GAN for 2D points, written outside the package."""
        default_data = "ring8"

        def __post_init__(self) -> None:
            w, z = self.cfg.net.width, self.cfg.net.z_dim
            self.nets = {"G": Mlp(z, 2, w), "D": Mlp(2, 1, w)}

        def build_optimizers(self):
            o = self.cfg.optim
            return {k: torch.optim.Adam(self.nets[k].parameters(), lr=lr, betas=(o.beta1, o.beta2))
                    for k, lr in (("G", o.lr_g), ("D", o.lr_d))}

        def phases(self):
            return [Phase("D", self.d_step, updates="D"), Phase("G", self.g_step, updates="G")]

        def d_step(self, ctx):
            m = self.cfg.tinyhinge.margin
            real, _ = ctx.real()
            fake = self.nets["G"](ctx.noise((len(real), self.cfg.net.z_dim))).detach()
            loss = torch.relu(m - self.nets["D"](real)).mean() + torch.relu(m + self.nets["D"](fake)).mean()
            return loss, {"Loss/D": loss.detach()}

        def g_step(self, ctx):
            fake = self.nets["G"](ctx.noise((ctx.batch_size, self.cfg.net.z_dim)))
            loss = -self.nets["D"](fake).mean()
            return loss, {"Loss/G": loss.detach()}

        def latent(self, n, gen, device, truncation=None):
            return truncated_normal((n, self.cfg.net.z_dim), truncation, gen, device)

        def generate(self, G, z, labels=None, truncation=None):
            return G(z)

    yield TinyHinge
    RECIPES._entries.pop(NAME)  # leave the registries as the package made them, for the tests after these
    SECTIONS.pop("tinyhinge")
    for key in [k for k in CHECKS if k.startswith("tinyhinge.")]:
        CHECKS.pop(key)


def test_a_method_in_its_own_files_trains_loads_and_samples(tiny_method, tmp_path):
    cfg = resolve({"recipe": NAME, "steps": 6, "batch_size": 16, "net.width": 16, "net.z_dim": 4, "log_every": 3,
                   "sample_every": 3, "checkpoint_every": 3, "eval.final_n": 200, "tinyhinge.margin": 0.5,
                   "out": str(tmp_path / "run")})
    assert cfg.data == "ring8" and cfg.tinyhinge.margin == 0.5  # its default data and its own section
    run = ganforge.train(cfg, progress=False)
    saved = (run / "config.yaml").read_text()
    assert "tinyhinge:\n  margin: 0.5" in saved  # its section is saved with the run and read back
    g = ganforge.load(run)
    assert g.kind == "sampler" and g.sample(8, seed=1).shape == (8, 2)
    assert torch.equal(g.sample(8, seed=1), g.sample(8, seed=1))
    final = ganforge.evaluate(run, metrics="fd", n=200)  # measured by the one path training used
    assert final["fd"] >= 0 and final["protocol"]["n_fake"] == 200
    assert (run / "samples" / "final.png").is_file() and (run / "MODEL_CARD.md").is_file()


def test_its_config_section_is_checked_like_the_core(tiny_method):
    with pytest.raises(ConfigError, match=r"tinyhinge.margin=-1.0 is not allowed; expected a number > 0"):
        resolve({"recipe": NAME, "tinyhinge.margin": -1})
    with pytest.raises(ConfigError, match="unknown config key 'tinyhinge.nope'"):
        resolve({"recipe": NAME, "tinyhinge.nope": 1})
