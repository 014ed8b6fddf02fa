"""Reference statistics of a real dataset, cached on disk as .safetensors + .json (never pickle).

Extracting features of the real set is the expensive, repeated half of every evaluation, so
the Fréchet statistics (mu, sigma in float64) and the real features (for KID / PRDC) are
stored once per (dataset, split, resolution, n, extractor) and reused. The key also holds a
hash of the real samples themselves and of the extractor's weights, so a changed dataset
(e.g. a ``folder:`` of new images under the same name) or retrained network is recomputed,
never silently mixed with stale numbers.

Location: ``cache_dir`` if given, else ``$GANFORGE_CACHE/refstats``, else
``~/.cache/ganforge/refstats``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..io import atomic_path, write_json
from .features import FeatureExtractor
from .frechet import feature_statistics

CACHE_ENV = "GANFORGE_CACHE"
FORMAT = 1


def default_cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "ganforge") / "refstats"


def content_hash(x: torch.Tensor) -> str:
    """Short sha256 of a tensor's values (float32, contiguous)."""
    return hashlib.sha256(x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()[:16]


@dataclass
class ReferenceStats:
    """Real-set features and their Fréchet statistics, plus the key they were computed under."""

    mu: torch.Tensor  # [d] float64
    sigma: torch.Tensor  # [d, d] float64
    feats: torch.Tensor  # [n, d] float32
    key: dict = field(default_factory=dict)
    cached: bool = False  # True when read from disk


def reference_key(
    name: str, split: str, resolution: int | None, real: torch.Tensor, extractor: FeatureExtractor
) -> dict:
    return {
        "format": FORMAT,
        "dataset": name,
        "split": split,
        "resolution": resolution,
        "n": len(real),
        "extractor": extractor.name,
        "extractor_fingerprint": extractor.fingerprint,
        "content": content_hash(real),
    }


def _stem(key: dict) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{key['dataset']}-{key['split']}")[:60]
    return f"{slug}-r{key['resolution']}-n{key['n']}-{key['extractor']}-{digest}"


def _load(path: Path, key: dict) -> ReferenceStats | None:
    from safetensors.torch import load_file

    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        if json.loads(meta.read_text()).get("key") != key:
            return None
        t = load_file(str(path))
        stats = ReferenceStats(t["mu"], t["sigma"], t["feats"], key, cached=True)
    except (OSError, ValueError, KeyError, json.JSONDecodeError, RuntimeError):
        return None  # unreadable or foreign file: recompute and overwrite
    if stats.feats.shape[0] != key["n"] or stats.sigma.shape != (len(stats.mu), len(stats.mu)):
        return None
    return stats


def reference_stats(
    real: torch.Tensor,
    extractor: FeatureExtractor,
    name: str,
    split: str,
    resolution: int | None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> ReferenceStats:
    """Features and (mu, sigma) of ``real`` under ``extractor``, from the cache when possible."""
    key = reference_key(name, split, resolution, real, extractor)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = root / f"{_stem(key)}.safetensors"
    if use_cache:
        hit = _load(path, key)
        if hit is not None:
            return hit
    feats = extractor(real)
    mu, sigma = feature_statistics(feats)
    stats = ReferenceStats(mu, sigma, feats.float().contiguous(), key)
    if use_cache:
        from safetensors.torch import save_file

        with atomic_path(path) as tmp:
            save_file({"mu": mu.contiguous(), "sigma": sigma.contiguous(), "feats": stats.feats}, str(tmp))
        write_json(path.with_suffix(".json"), {"key": key, "extractor": extractor.describe})
    return stats
