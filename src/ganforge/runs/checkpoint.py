"""Checkpoints: weights in safetensors, the rest (optimizer states, RNG states, counters)
as tensors in safetensors plus a JSON tree - never a pickle.

Layout: ``RUN/checkpoints/step-0001000/{weights.safetensors, state.safetensors, state.json,
manifest.json}``. A checkpoint directory is written under a temporary name and renamed into
place, then ``RUN/checkpoints/latest.json`` is replaced atomically, so a kill at any moment
leaves the previous checkpoint intact and pointed to. ``manifest.json`` (written last) holds
the size and SHA-256 of every file and the format version: a truncated, tampered or foreign
file is refused with one line naming it, never handed to a deserializer it could crash.
If the pointer names a checkpoint that is gone (a kill between two renames), the newest
complete ``step-*`` checkpoint is used instead.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import GanforgeError
from ..io import write_json
from ..version import __version__

TENSOR = "__tensor__"
CHECKPOINT_FORMAT = 1  # bump when the layout changes; newer formats are refused by older readers
FILES = ("weights.safetensors", "state.safetensors", "state.json")
MANIFEST = "manifest.json"
MAX_STATE_JSON = 64 << 20  # bytes: a state tree is small; a larger file is not ours


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace every tensor in a nested dict/list by a reference; collect the tensors."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {TENSOR: prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    return obj


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict) and TENSOR in obj:
        return tensors[obj[TENSOR]]
    if isinstance(obj, dict) and "__dict__" in obj:  # keeps non-string keys (optimizer param ids)
        return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:07d}"


def save_checkpoint(run_dir: Path, step: int, weights: dict[str, torch.Tensor], state: dict[str, Any],
                    keep: int, name: str = "latest") -> Path:
    """Write one checkpoint atomically and point ``<name>.json`` to it.

    ``latest`` checkpoints live in ``step-NNNNNNN`` directories, pruned beyond ``keep``;
    another ``name`` (``best``) is one directory of that name, replaced each time.
    """
    final = checkpoint_dir(run_dir, step) if name == "latest" else run_dir / "checkpoints" / name
    tmp, old = final.with_name(f".tmp-{final.name}"), final.with_name(f".old-{final.name}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / "weights.safetensors"))
        tensors: dict[str, torch.Tensor] = {}
        tree = flatten(state, tensors, "state")
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(tree))
        write_json(tmp / MANIFEST, {"format": CHECKPOINT_FORMAT, "step": step, "ganforge": __version__,
                                    "files": {f: _digest(tmp / f) for f in FILES}})
        if final.exists():  # the same step again (e.g. saved on interrupt): swap, never delete first
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
        write_json(run_dir / "checkpoints" / f"{name}.json", {"step": step, "path": final.name})
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            old.rename(final)
        raise GanforgeError(f"cannot write checkpoint {final}: {e.strerror or e}; {_kept(run_dir)}") from None
    shutil.rmtree(old, ignore_errors=True)
    if name == "latest":
        _prune(run_dir, keep)
    return final


def _digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


def _kept(run_dir: Path) -> str:
    try:
        return f"the previous checkpoint {latest_checkpoint(run_dir).name} is intact"
    except GanforgeError:
        return "no earlier checkpoint exists"


def _prune(run_dir: Path, keep: int) -> None:
    ckpts = sorted((run_dir / "checkpoints").glob("step-*"))
    pointed = json.loads((run_dir / "checkpoints" / "latest.json").read_text())["path"]
    for old in ckpts[:-keep]:
        if old.name != pointed:
            shutil.rmtree(old, ignore_errors=True)


def _complete(path: Path) -> bool:
    return path.is_dir() and all((path / f).is_file() for f in (*FILES, MANIFEST))


def latest_checkpoint(run_dir: Path, name: str = "latest") -> Path:
    """The checkpoint ``latest.json`` (or ``best.json``) points to; for ``latest``, the newest
    complete ``step-*`` directory when the pointer is unreadable or names a missing one."""
    run_dir = Path(run_dir)
    pointer = run_dir / "checkpoints" / f"{name}.json"
    try:
        path = run_dir / "checkpoints" / Path(str(json.loads(pointer.read_text())["path"])).name
    except (OSError, ValueError, KeyError, TypeError):
        path = None
    if path is not None and (path / "weights.safetensors").is_file():
        return path
    if name == "latest":
        complete = [p for p in sorted((run_dir / "checkpoints").glob("step-*")) if _complete(p)]
        if complete:
            return complete[-1]
    if path is None and not pointer.is_file():
        raise GanforgeError(f"{str(run_dir)!r} has no checkpoint (expected {pointer}); is it a ganforge run directory?")
    raise GanforgeError(f"checkpoint {str(path or pointer)!r} is missing its weights.safetensors")


def verify(ckpt: Path, files: tuple[str, ...] = FILES) -> None:
    """Check sizes and SHA-256 against the manifest; one-line error naming the first bad file.

    Checkpoints written before manifests existed (ganforge 0.1.0 without one) are read unchecked;
    the safetensors reader still refuses anything that is not a safetensors file.
    """
    manifest_path = ckpt / MANIFEST
    if not manifest_path.is_file():
        return
    try:
        manifest = json.loads(manifest_path.read_text())
        entries, fmt = manifest["files"], int(manifest["format"])
    except (OSError, ValueError, KeyError, TypeError):
        raise GanforgeError(f"checkpoint manifest {manifest_path} is unreadable or damaged") from None
    if fmt > CHECKPOINT_FORMAT:
        raise GanforgeError(f"checkpoint {ckpt} has format {fmt}, written by ganforge {manifest.get('ganforge')}; "
                            f"this ganforge {__version__} reads formats up to {CHECKPOINT_FORMAT}: upgrade ganforge")
    for f in files:
        path, want = ckpt / f, entries.get(f)
        if want is None:
            raise GanforgeError(f"checkpoint file {path} is not listed in its manifest")
        if not path.is_file():
            raise GanforgeError(f"checkpoint file {path} is missing")
        size = path.stat().st_size
        if size != want["size"]:
            raise GanforgeError(f"checkpoint file {path} is {size} bytes, its manifest says {want['size']}: "
                                "truncated or replaced")
        if _digest(path)["sha256"] != want["sha256"]:
            raise GanforgeError(f"checkpoint file {path} does not match its SHA-256 in the manifest: "
                                "damaged or tampered with")


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or a one-line error naming it (pickles and other formats are never executed)."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GanforgeError(f"{path} is not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None


def load_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    verify(ckpt, ("weights.safetensors",))
    return read_safetensors(ckpt / "weights.safetensors")


def load_state(ckpt: Path) -> dict[str, Any]:
    verify(ckpt, ("state.safetensors", "state.json"))
    tensors = read_safetensors(ckpt / "state.safetensors")
    path = ckpt / "state.json"
    try:
        if path.stat().st_size > MAX_STATE_JSON:
            raise ValueError("too large")
        return unflatten(json.loads(path.read_text()), tensors)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise GanforgeError(f"{path} is not a readable ganforge state file ({e})") from None


def load_into(net: torch.nn.Module, state_dict: dict[str, torch.Tensor] | None, what: str) -> None:
    """``net.load_state_dict`` with a one-line error when the checkpoint does not fit the network."""
    if state_dict is None:
        raise GanforgeError(f"the checkpoint has no weights for {what}; it was written by another recipe or config")
    try:
        net.load_state_dict(state_dict)
    except RuntimeError as e:
        first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
        raise GanforgeError(f"the checkpoint's {what} weights do not fit the run's network ({first[:160]})") from None


def first_mismatch(net: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> str | None:
    """The first tensor of ``net`` that ``state_dict`` lacks or holds in another shape, in words; None if it fits."""
    own = net.state_dict()
    for key, t in own.items():
        if key not in state_dict:
            return f"{key} is missing there"
        if tuple(state_dict[key].shape) != tuple(t.shape):
            return f"{key} is {list(state_dict[key].shape)} there and {list(t.shape)} here"
    extra = next((k for k in state_dict if k not in own), None)
    return f"{extra} is there but not here" if extra else None


def split_weights(weights: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{"G.net.0.weight": t, ...}`` -> ``{"G": {"net.0.weight": t}, ...}``."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in weights.items():
        net, _, name = key.partition(".")
        out.setdefault(net, {})[name] = t
    return out


def join_weights(state_dicts: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"{net}.{k}": v for net, sd in state_dicts.items() for k, v in sd.items()}
