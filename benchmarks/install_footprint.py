"""Benchmark: what a fresh install costs, core vs the extras (issue 32, item 9).

Usage:
    python benchmarks/install_footprint.py [--keep]

In a new virtual environment: PyTorch first (`pip install torch torchvision`, as the README's install
section says), then `pip install -e .` (core), then `pip install -e ".[all]"` (every extra). Prints the
wall time of each step and the size of site-packages after it. pip's download cache is whatever this
machine has (say which when recording: a warm cache measures unpacking and resolving, not the network).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", action="store_true", help="keep the virtual environment")
    ap.add_argument("--torch", default="torch torchvision", help="what to install first")
    args = ap.parse_args()
    venv = Path(tempfile.mkdtemp(prefix="ganforge-install-")) / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    site = next((venv / "lib").glob("python*/site-packages"))
    steps = [("torch", args.torch.split()), ("core: pip install -e .", ["-e", str(ROOT)]),
             ("extras: pip install -e '.[all]'", ["-e", f"{ROOT}[all]"])]
    before = size_mb(site)
    for name, what in steps:
        t0 = time.perf_counter()
        subprocess.run([*pip, *what], check=True)
        after = size_mb(site)
        print(f"{name}: {time.perf_counter() - t0:.0f} s, site-packages +{after - before:.0f} MB "
              f"(total {after:.0f} MB)", flush=True)
        before = after
    if not args.keep:
        shutil.rmtree(venv.parent)


if __name__ == "__main__":
    main()
