import os

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
