"""The README's quick tour runs as written, in order, in an empty folder: every command succeeds and the run
directories it names are the ones the runs before it made. Training commands get tiny steps and nets
added (the tour's own flags stay), a diffusion sampler fewer steps and a comparison fewer samples;
``demo`` and ``serve`` start servers and are left to test_serve.py."""
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main

README = Path(__file__).parents[1] / "README.md"
TINY = ["--batch-size", "8", "--set", "net.width=8", "--set", "net.max_channels=16", "--set", "net.z_dim=8",
        "--set", "eval.final_n=0", "--set", "eval.n=50", "--set", "log_every=1", "--set", "sample_every=2",
        "--set", "checkpoint_every=2", "--set", "sr.pretrain=1", "--set", "sr.blocks=1", "--set", "sr.growth=4",
        "--set", "text.pretrain=1", "--set", "text.embed_dim=16", "--set", "diffusion.channels=8,16",
        "--set", "diffusion.attention=0,1", "--set", "translate.blocks=1", "--set", "style.map_layers=2",
        "--set", "style.w_dim=16"]


def tour() -> list[list[str]]:
    text = README.read_text()
    block = text[text.index("## Quick tour"):]
    block = block[block.index("```bash\n") + 8:]
    block = block[: block.index("```")]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def tiny(argv: list[str]) -> list[str]:
    """A training command with tiny steps and nets (a resume continues a little further); a diffusion sampler with
    20 steps; a comparison on 100 samples per run."""
    if argv[1] == "sample" and "--steps" in argv:
        return [*argv[: argv.index("--steps") + 1], "20", *argv[argv.index("--steps") + 2:]]
    if argv[1] == "compare":
        return [*argv, "--n", "100"]
    if argv[1] != "train" or "--dry-run" in argv:
        return argv
    out = list(argv)
    if "--steps" in out:
        out[out.index("--steps") + 1] = "5" if "--resume" in out else "3"
    elif "--resume" not in out:
        out += ["--steps", "3"]
    return out if "--resume" in out else out + TINY


def user_files(home: Path, cwd: Path) -> None:
    """What the tour says is yours: a folder of pictures, a digit, an edge map, typeset digits and a photo."""
    rng = np.random.default_rng(0)
    (home / "pictures").mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(home / "pictures" / f"{i}.png")
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(cwd / "digit.png")
    Image.fromarray((rng.random((70, 90)) > 0.9).astype(np.uint8) * 255).save(cwd / "edges.png")
    (cwd / "typeset").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(cwd / "typeset" / f"{i}.png")
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(cwd / "photo.jpg")


@pytest.mark.slow
def test_the_quick_tour_runs_in_order_as_written(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    user_files(home, cwd)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("BROWSER", "true")  # report --open: a browser that does nothing
    monkeypatch.chdir(cwd)
    ran = []
    for argv in tour():
        assert argv[0] == "ganforge"
        if argv[1] in ("demo", "serve"):
            continue
        assert main(tiny(argv)[1:]) == 0, " ".join(argv)
        ran.append(argv[1])
        for word in argv:  # every run directory a command names exists by then, made by the lines above
            if word.startswith("runs/"):
                assert (cwd / word / "config.yaml").is_file(), (" ".join(argv), sorted(p.name for p in
                                                                                   (cwd / "runs").iterdir()))
    assert len(ran) >= 30
    assert sorted(p.name for p in (cwd / "runs").iterdir())[-1] == "0014-video-moving-digits"
    for made in ("grid.png", "x.npy", "x.labels.npy", "t.png", "mix.png", "walk.gif", "proj/latent.npy", "edit.png",
                 "runs/0006-stylegan2-digits/directions.png", "photo.png", "d.png", "compare.md", "big.png", "x.png",
                 "runs/0000-cgan-digits/export/generator.onnx", "clips.gif"):
        assert (cwd / made).is_file(), made
    assert len(list((cwd / "hand").glob("*.png"))) == 3 and len(list((cwd / "synth").rglob("*.png"))) == 1000
