import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny tensors: threads cost more than they give
# ... and in the training subprocesses the tests start (torchrun, the CLI): beside a second pytest-xdist
# worker on 2 cores, two-thread processes spin against each other
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Embedding the watermark costs ~0.1 s per grid; the suite writes hundreds. test_provenance.py turns it back on.
os.environ.setdefault("GANFORGE_WATERMARK", "0")


TINY = {"recipe": "dcgan", "resolution": 8, "batch_size": 8, "net.width": 8, "net.z_dim": 8, "steps": 4, "log_every": 2,
        "sample_every": 2, "checkpoint_every": 2,
        "net.z_discrete": 0, "reg.info": 0.0, "reg.mbstd": 0}  # a plain DCGAN, not the digits preset


@pytest.fixture
def tiny(tmp_path):
    """A tiny DCGAN-on-digits config dict writing into a temp run dir."""
    return dict(TINY, out=str(tmp_path / "run"))


def loss_log(run_dir) -> list[dict]:
    """The training-interval lines of a run's metrics.jsonl (without the ``Metrics/*`` measurement lines)."""
    from ganforge.train.logger import read_log

    return [r for r in read_log(run_dir) if "Loss/D" in r]


# ---------------------------------------------------------------- tiny runs shared by the whole session
# Each is trained once per pytest process (per xdist worker) on first use and shared read-only: a test that
# changes a run copies it to its tmp_path first (shutil.copytree). The teardown checks that none was changed.


def _snapshot(run: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(run)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(run.rglob("*"))}


def _shared_run(tmp_path_factory, name: str, cfg: dict):
    import ganforge

    run = ganforge.train(dict(cfg, out=str(tmp_path_factory.mktemp("shared") / name)), progress=False)
    before = _snapshot(run)
    yield run
    assert _snapshot(run) == before, f"a test changed the shared run {name}; copy it to tmp_path before changing it"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """TINY: a plain DCGAN on 8 px digits, 4 steps (checkpoints at 0, 2, 4), no end-of-training measurement."""
    yield from _shared_run(tmp_path_factory, "dcgan", dict(TINY, **{"eval.final_n": 0}))


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory):
    """TINY as a cgan, with an end-of-training measurement (report.html, MODEL_CARD.md metrics)."""
    yield from _shared_run(tmp_path_factory, "cgan", dict(TINY, recipe="cgan", **{"eval.final_n": 200}))


@pytest.fixture(scope="session")
def sg_run(tmp_path_factory):
    """test_stylegan2's TINY_SG: conditional StyleGAN2 on 8 px digits, 4 steps (every phase runs)."""
    from test_stylegan2 import TINY_SG

    yield from _shared_run(tmp_path_factory, "stylegan2", TINY_SG)


@pytest.fixture(scope="session")
def sr_run(tmp_path_factory):
    """test_superres's TINY_SR: ESRGAN x4 on 16 px patches, 2 PSNR-stage steps then 2 GAN steps."""
    from test_superres import TINY_SR

    yield from _shared_run(tmp_path_factory, "esrgan", TINY_SR)


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory):
    from test_vae_ddpm import TINY_VAE

    yield from _shared_run(tmp_path_factory, "vae", dict(TINY_VAE, **{"eval.final_n": 0}))


@pytest.fixture(scope="session")
def ddpm_run(tmp_path_factory):
    from test_vae_ddpm import TINY_DDPM

    yield from _shared_run(tmp_path_factory, "ddpm", dict(TINY_DDPM, **{"eval.final_n": 0}))
