"""Run directories: ``runs/NNNN-<recipe>-<data>`` holding config, checkpoints, logs, pictures."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from ..config import TrainConfig, from_dict, to_yaml
from ..data import DataSpec
from ..errors import GanforgeError
from ..io import write_json, write_text

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"  # facts a loader needs without the dataset: data spec, versions


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", Path(text.replace("folder:", "")).name or text).strip("-").lower()[:40]


def new_run_dir(cfg: TrainConfig) -> Path:
    if cfg.out:
        return Path(cfg.out).expanduser()
    root = Path(cfg.runs_dir).expanduser()
    numbers = [int(m.group(1)) for p in root.glob("*") if (m := re.match(r"(\d{4})-", p.name))]
    return root / f"{max(numbers, default=-1) + 1:04d}-{cfg.recipe}-{_slug(cfg.data)}"


def write_run_files(run_dir: Path, cfg: TrainConfig, spec: DataSpec, extra: dict[str, Any]) -> None:
    write_text(run_dir / CONFIG_FILE, to_yaml(cfg))
    write_json(run_dir / RUN_FILE, {"data": {"name": spec.name, "kind": spec.kind, "shape": list(spec.shape),
                                             "class_names": spec.class_names}, **extra})


def read_run(run_dir: str | Path) -> tuple[Path, TrainConfig, DataSpec]:
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / RUN_FILE).is_file():
        raise GanforgeError(f"{str(run_dir)!r} is not a ganforge run directory (no {CONFIG_FILE} / {RUN_FILE})")
    cfg = from_dict(yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {})
    d = json.loads((run_dir / RUN_FILE).read_text())["data"]
    return run_dir, cfg, DataSpec(d["name"], d["kind"], tuple(d["shape"]), list(d["class_names"]))
