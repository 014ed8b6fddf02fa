"""Checkpoints: weights in safetensors, the rest (optimizer states, RNG states, counters)
as tensors in safetensors plus a JSON tree - never a pickle.

Layout: ``RUN/checkpoints/step-0001000/{weights.safetensors, state.safetensors, state.json}``.
A checkpoint directory is written under a temporary name and renamed into place, then
``RUN/checkpoints/latest.json`` is replaced atomically, so a kill at any moment leaves the
previous checkpoint intact and pointed to.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import GanforgeError
from ..io import write_json

TENSOR = "__tensor__"


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
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / "weights.safetensors"))
    tensors: dict[str, torch.Tensor] = {}
    tree = flatten(state, tensors, "state")
    save_file(tensors, str(tmp / "state.safetensors"))
    (tmp / "state.json").write_text(json.dumps(tree))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    write_json(run_dir / "checkpoints" / f"{name}.json", {"step": step, "path": final.name})
    if name == "latest":
        _prune(run_dir, keep)
    return final


def _prune(run_dir: Path, keep: int) -> None:
    ckpts = sorted((run_dir / "checkpoints").glob("step-*"))
    for old in ckpts[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path, name: str = "latest") -> Path:
    """The checkpoint ``latest.json`` (or ``best.json``) points to."""
    pointer = run_dir / "checkpoints" / f"{name}.json"
    if not pointer.is_file():
        raise GanforgeError(f"{str(run_dir)!r} has no checkpoint (expected {pointer}); is it a ganforge run directory?")
    path = run_dir / "checkpoints" / json.loads(pointer.read_text())["path"]
    if not (path / "weights.safetensors").is_file():
        raise GanforgeError(f"checkpoint {str(path)!r} is missing its weights.safetensors")
    return path


def load_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "weights.safetensors"))


def load_state(ckpt: Path) -> dict[str, Any]:
    tensors = load_file(str(ckpt / "state.safetensors"))
    return unflatten(json.loads((ckpt / "state.json").read_text()), tensors)


def split_weights(weights: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{"G.net.0.weight": t, ...}`` -> ``{"G": {"net.0.weight": t}, ...}``."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in weights.items():
        net, _, name = key.partition(".")
        out.setdefault(net, {})[name] = t
    return out


def join_weights(state_dicts: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"{net}.{k}": v for net, sd in state_dicts.items() for k, v in sd.items()}
