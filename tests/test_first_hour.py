"""A new user's first hour: progress that shows in a terminal and in a log, the version, whole
descriptions in ``ganforge list``, and no silent run that trains nothing."""
import os
import re
import select
import subprocess
import sys
import time

import pytest

from ganforge.cli import main

TINY_ARGS = ["--recipe", "dcgan", "--resolution", "8", "--batch-size", "8", "--set", "net.width=8",
             "--set", "net.z_dim=8", "--set", "net.z_discrete=0", "--set", "reg.info=0", "--set", "reg.mbstd=0",
             "--set", "log_every=2", "--set", "sample_every=4", "--set", "checkpoint_every=4",
             "--set", "eval.final_n=0"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def test_version(capsys):
    from ganforge.version import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ganforge {__version__}"


@pytest.mark.parametrize("what", ["recipes", "datasets", "losses", "metrics", "features"])
def test_every_list_entry_has_a_whole_description(what):
    from ganforge.data import DATASETS
    from ganforge.losses import LOSSES
    from ganforge.metrics.evaluate import METRICS
    from ganforge.metrics.features import FEATURES
    from ganforge.recipes import RECIPES

    registry = {"recipes": RECIPES, "datasets": DATASETS, "losses": LOSSES, "metrics": METRICS,
                "features": FEATURES}[what]
    for name in registry.list():
        text = registry.describe(name)
        assert len(text) > 20 and text[-1] in ".)?", (name, text)  # a sentence, not cut at a line end
        assert "``" not in text and "\n" not in text, (name, text)


def test_a_log_gets_plain_progress_lines_and_the_run_directory_first(tmp_path, capfd, monkeypatch):
    """Not a terminal (a file, nohup, CI): the run directory at the start, then flushed progress lines."""
    monkeypatch.setenv("GANFORGE_PROGRESS_SECONDS", "0")
    run = tmp_path / "run"
    assert main(["train", *TINY_ARGS, "--steps", "4", "--out", str(run)]) == 0
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines[0] == f"dcgan on digits: steps 0 -> 4 on cpu, run directory {run}"
    steps = [line for line in lines if line.startswith("step ")]
    assert [s.split()[1] for s in steps][:4] == ["1/4", "2/4", "3/4", "4/4"]
    assert re.search(r"step 4/4 \(100%\) \| \d+ img/s \| D [\d.]+ \| G [\d.-]+ .*eta 0:00:00", steps[-1])
    assert not any("\x1b[" in line for line in lines)  # no terminal escapes in a log


def test_a_terminal_of_80_columns_gets_a_bar_that_fits(tmp_path):
    """In a pseudo-terminal of 80 columns the bar keeps the step, the speed, the losses and the ETA visible."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", *TINY_ARGS, "--steps", "12",
                             "--out", str(tmp_path / "run")], stdin=follower, stdout=follower, stderr=follower,
                            env=env, close_fds=True)
    os.close(follower)
    out, deadline = b"", time.time() + 240
    while time.time() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    screen = [ANSI.sub("", line) for line in re.split(r"[\r\n]", out.decode(errors="replace"))]  # each redraw
    redraws = [line for line in screen if line.lstrip().startswith("train ")]
    bars = [line for line in redraws if "12/12" in line]
    assert bars, screen[-10:]
    assert all(len(line.rstrip()) <= 80 for line in redraws), max(redraws, key=len)
    assert re.search(r"train .* 12/12 \d+ img/s D [\d.]+ G [\d.-]+ (! \w+ )*eta \d:\d\d:\d\d", bars[-1]), bars[-1]


def test_a_run_that_would_end_inside_a_preparatory_stage_is_refused(tmp_path, capsys):
    assert main(["train", "--recipe", "text2image", "--data", "shapes:64", "--steps", "20",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "steps=20 ends inside the text-alignment stage (text.pretrain=" in err and "--steps more than" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_seed_draws_the_same_image_in_every_command(tmp_path):
    """sample (Python and CLI), draw, the walk's endpoints and served requests agree for a seed on a conditional
    run without a label, where labels and latents both come from the seed."""
    import numpy as np
    import torch

    import ganforge
    from ganforge.inference.drawing import latents

    run = ganforge.train({"recipe": "cgan", "resolution": 8, "batch_size": 8, "net.width": 8, "net.z_dim": 8,
                          "steps": 2, "log_every": 1, "eval.final_n": 0, "out": str(tmp_path / "run")},
                         progress=False)
    g = ganforge.load(run)
    one = {s: g.sample(1, seed=s) for s in (3, 4)}
    assert not torch.equal(one[3], one[4])
    assert torch.equal(g.draw(1, 3)[0], one[3])
    walk = g.interpolate([3, 4], frames=4)  # a conditional walk keeps the first seed's class
    label3 = g.draw(1, 3)[1]
    assert torch.allclose(walk[0], one[3][0], atol=1e-6)
    assert torch.allclose(walk[-1], g.sample(1, seed=4, labels=label3)[0], atol=1e-6)
    z, y = latents(g.recipe, g.spec, 1, 4, None, None, g.device)  # what serve batches for a request of seed 4
    assert torch.equal(g.synthesize(z, y), one[4])
    assert main(["sample", str(run), "--n", "1", "--seed", "3", "--out", str(tmp_path / "x.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "x.npy"), one[3].numpy())


def test_errors_suggest_the_fix(tmp_path, capsys):
    from ganforge.errors import GanforgeError
    from ganforge.text import Vocabulary

    for argv, expected in [
        (["train", "--recipe", "stylgan2", "--dry-run"], "unknown recipe 'stylgan2' (did you mean 'stylegan2'?)"),
        (["train", "--data", "digit", "--dry-run"], "unknown dataset 'digit' (did you mean 'digits'?)"),
        (["train", "--set", "optim.lr_gg=1", "--dry-run"],
         "unknown config key 'optim.lr_gg' (did you mean 'optim.lr_g'?)"),
        (["train", "--data", str(tmp_path), "--dry-run"], f"a folder of images is --data folder:{tmp_path}"),
    ]:
        assert main(argv) == 2
        assert expected in capsys.readouterr().err
    vocab = Vocabulary(["a", "red", "green", "circle", "square"])
    with pytest.raises(GanforgeError) as e:
        vocab.ids("a gren circel")
    assert "unknown words 'gren' (did you mean 'green' or 'red'?), 'circel' (did you mean 'circle'?)" in str(e.value)
    assert "ganforge list vocabulary RUN" in str(e.value)


def test_reports_suggest_the_command_of_their_kind_of_run(tmp_path):
    import ganforge

    run = ganforge.train({"recipe": "pix2pix", "data": "gray2color", "resolution": 16, "batch_size": 4,
                          "net.width": 4, "net.max_channels": 8, "steps": 2, "log_every": 1, "eval.final_n": 0,
                          "out": str(tmp_path / "run")}, progress=False)
    md, page = (run / "report.md").read_text(), (run / "report.html").read_text()
    assert f"translate with `ganforge translate {run} --input" in md and "ganforge sample" not in md
    assert "## Translations of fixed training inputs" in md
    assert f"translate with <code>ganforge translate {run} --input" in page and "ganforge sample" not in page


def test_a_long_run_says_early_how_long_it_will_take(capfd, monkeypatch):
    progress = sys.modules["ganforge.train.progress"]
    monkeypatch.setattr(progress, "ESTIMATE_AFTER", 0.0)
    bar = progress.TrainProgress(total=100_000, completed=0, enabled=True, terminal=False, every=1e9)
    bar.advance()  # the warm-up step is not timed
    time.sleep(0.01)
    bar.advance()
    err = capfd.readouterr().err
    assert re.search(r"estimated: about [\d.]+ (min|h) for the remaining 99,998 steps on this machine; --steps N", err)


def test_threads_default_to_the_idle_cores(monkeypatch):
    trainer = sys.modules["ganforge.train.trainer"]
    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for busy, expected in [(0.0, cores), (cores - 1.0, 1), (cores + 3.0, 1)]:
        monkeypatch.setattr(trainer, "busy_threads", lambda busy=busy: busy)
        assert trainer.cpu_threads(0) == expected
    assert trainer.cpu_threads(3) == 3  # chosen: as given
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert trainer.cpu_threads(0) == 0  # OMP_NUM_THREADS chose for every OpenMP program: torch's default stands


def test_a_missing_optional_part_is_named_in_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    """The diffusion model, ONNX export and MP4 writing are extras: without them the command says which."""
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if not installed: importing it fails
    assert main(["train", "--recipe", "ddpm", "--steps", "2", "--out", str(tmp_path / "ddpm")]) == 2
    err = capsys.readouterr().err
    assert "the diffusion model needs diffusers" in err and "pip install 'ganforge[diffusion]'" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(tmp_path / "g.onnx")]) == 2
    assert "ONNX export needs onnxruntime" in capsys.readouterr().err and not (tmp_path / "g.onnx").exists()
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    assert main(["interpolate", str(tiny_run), "--seeds", "1,2", "--out", str(tmp_path / "w.mp4")]) == 2
    assert "pip install 'ganforge[video]'" in capsys.readouterr().err


def test_help_says_what_the_tool_does(capsys, tmp_path):
    """--help texts checked against behaviour: the default recipe the help describes is the one resolve picks,
    and the samplers it offers are the recipes' own."""
    from ganforge.compare import sampler_names
    from ganforge.recipes import recipe_class, resolve

    def help_of(*command: str) -> str:
        assert main([*command, "--help"]) == 0
        return " ".join(capsys.readouterr().out.replace("│", " ").split())

    train = help_of("train")
    assert ("conditional on labelled digits, conditional on clusters or classes for a folder, an MLP GAN for 2D "
            "points, a convolutional GAN for other images") in train
    assert recipe_class(resolve(flags={"data": "digits"}).recipe).__name__ == "CGAN"
    from PIL import Image

    Image.new("L", (16, 16)).save(tmp_path / "one.png")
    assert recipe_class(resolve(flags={"data": f"folder:{tmp_path}"}).recipe).__name__ == "SelfConditionedGAN"
    assert resolve(flags={"data": "ring8"}).recipe == "vanilla"
    assert resolve(flags={"data": "faces100"}).recipe == "dcgan"
    sample = help_of("sample")
    assert f"the sampler ({' or '.join(sampler_names())})" in sample and sampler_names() == ["ddim", "ddpm"]
