"""Run directories: ``runs/NNNN-<recipe>-<data>`` holding config, checkpoints, logs, pictures."""
from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import TrainConfig, from_dict, safe_yaml, to_yaml
from ..data import DataSpec
from ..errors import GanforgeError
from ..io import write_json, write_text
from ..registry import did_you_mean
from ..version import __version__

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"  # facts a loader needs without the dataset: data spec, versions
LOCK_FILE = ".lock"
RUN_FORMAT = 1  # layout of config.yaml / run.json; runs without the key were written by ganforge 0.1.0 (format 1)
MAX_META_BYTES = 1 << 20  # config.yaml and run.json are a few KiB; anything larger is not ours


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", Path(text.replace("folder:", "")).name or text).strip("-").lower()[:40]


def new_run_dir(cfg: TrainConfig) -> Path:
    if cfg.out:
        return Path(cfg.out).expanduser()
    root = Path(cfg.runs_dir).expanduser()
    numbers = [int(m.group(1)) for p in root.glob("*") if (m := re.match(r"(\d{4})-", p.name))]
    return root / f"{max(numbers, default=-1) + 1:04d}-{cfg.recipe}-{_slug(cfg.data)}"


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """run.json as a dict ({} when missing or damaged): facts for reports and provenance, not for loading."""
    try:
        return dict(json.loads(_read_meta(Path(run_dir) / RUN_FILE)))
    except (OSError, ValueError, TypeError, GanforgeError):
        return {}


def update_meta(run_dir: Path, **fields: Any) -> None:
    """Add or replace top-level facts of run.json (the end-of-training counters, ...)."""
    write_json(Path(run_dir) / RUN_FILE, {**read_meta(run_dir), **fields})


def write_run_files(run_dir: Path, cfg: TrainConfig, spec: DataSpec, extra: dict[str, Any]) -> None:
    """config.yaml and run.json; a resumed run keeps its id (``run_id``, random at the first start)."""
    import uuid

    old = read_meta(run_dir)
    write_text(run_dir / CONFIG_FILE, to_yaml(cfg))
    write_json(run_dir / RUN_FILE, {"format": RUN_FORMAT, "run_id": old.get("run_id") or uuid.uuid4().hex[:12],
                                    "data": {"name": spec.name, "kind": spec.kind,
                                    "shape": list(spec.shape), "class_names": spec.class_names,
                                    **({"shape_b": list(spec.shape_b), "paired": spec.paired, "patches": spec.patches}
                                       if spec.translation
                                       else {}),
                                    **({"vocab": spec.vocab, "prompts": spec.prompts} if spec.captioned else {}),
                                    **({"class_prior": spec.class_prior, "clustered": spec.clustered}
                                       if spec.class_prior else {})},
                                    **extra})


def _read_meta(path: Path) -> str:
    if path.stat().st_size > MAX_META_BYTES:
        raise GanforgeError(f"{path} is {path.stat().st_size} bytes; a ganforge {path.name} is under 1 MiB")
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise GanforgeError(f"{path} is not a text file; is this a ganforge run directory?") from None


PRETRAINED = "pretrained:"  # runs shipped inside the package: pretrained:NAME wherever a run directory goes


def pretrained_root() -> Path:
    return Path(str(resources.files("ganforge") / "pretrained"))


def pretrained_names() -> list[str]:
    root = pretrained_root()
    return sorted(p.name for p in root.iterdir() if (p / RUN_FILE).is_file()) if root.is_dir() else []


def run_path(run_dir: str | Path) -> Path:
    """A run directory as given, or ``pretrained:NAME``'s folder inside the package."""
    text = str(run_dir)
    if not text.startswith(PRETRAINED):
        return Path(run_dir).expanduser()
    name = text[len(PRETRAINED):]
    if name not in pretrained_names():
        raise GanforgeError(f"no pretrained run {name!r}{did_you_mean(name, pretrained_names())}; there are: "
                            f"{', '.join(pretrained_names()) or 'none'} (ganforge list pretrained)")
    return pretrained_root() / name


def read_run(run_dir: str | Path) -> tuple[Path, TrainConfig, DataSpec]:
    """The run's config and data spec; runs of a newer format, or damaged metadata, are refused in one line.
    ``pretrained:NAME`` reads a run shipped with ganforge."""
    run_dir = run_path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / RUN_FILE).is_file():
        raise GanforgeError(f"{str(run_dir)!r} is not a ganforge run directory (no {CONFIG_FILE} / {RUN_FILE})")
    try:
        meta = json.loads(_read_meta(run_dir / RUN_FILE))
        fmt, version = int(meta.get("format", 1)), meta.get("ganforge", "unknown")
        d = meta["data"]
        spec = DataSpec(str(d["name"]), str(d["kind"]), tuple(int(s) for s in d["shape"]),
                        [str(c) for c in d["class_names"]],
                        tuple(int(s) for s in d["shape_b"]) if d.get("shape_b") else None, bool(d.get("paired")),
                        bool(d.get("patches")), [str(w) for w in d.get("vocab", [])],
                        [str(p) for p in d.get("prompts", [])], [float(p) for p in d.get("class_prior", [])],
                        bool(d.get("clustered")))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise GanforgeError(f"{run_dir / RUN_FILE} is damaged or not a ganforge run file") from None
    if fmt > RUN_FORMAT:
        raise GanforgeError(f"{run_dir} was written by ganforge {version} (run format {fmt}); this ganforge "
                            f"{__version__} reads run formats up to {RUN_FORMAT}: upgrade ganforge to use it")
    values = safe_yaml(_read_meta(run_dir / CONFIG_FILE), str(run_dir / CONFIG_FILE))
    try:
        cfg = from_dict(values)
    except GanforgeError as e:
        raise GanforgeError(f"{run_dir / CONFIG_FILE} (written by ganforge {version}) cannot be read by ganforge "
                            f"{__version__}: {e}") from None
    return run_dir, cfg, spec


class RunLock:
    """An exclusive lock on a run directory for the lifetime of one training process.

    ``flock`` on ``RUN/.lock``: released by the kernel when the process dies, however it dies
    (``kill -9`` included), so a stale lock never blocks a resume. A second process pointed at
    the same directory is refused with the first one's pid.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path, self.fd = Path(run_dir) / LOCK_FILE, None

    def acquire(self) -> RunLock:
        if self.fd is not None:
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise GanforgeError(f"run directory {self.path.parent} is in use by another ganforge process "
                                f"(pid {holder}); wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None
