"""Training statistics: accumulated on the device, read back once per log interval, written
as JSONL (``metrics.jsonl``) and TensorBoard events. Names are structured: ``Loss/D``,
``Loss/G``, ``Progress/kimg``, ``Timing/img_per_s``."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..io import write_text


class StatsAccumulator:
    """Sums of per-step statistics kept as device tensors: no host sync until ``flush``."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for k, v in stats.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def flush(self, world_size: int = 1) -> dict[str, float]:
        """Means since the last flush (one device->host transfer); under DDP (``world_size`` > 1)
        averaged over ranks with one all-reduce, so the log describes the global batch."""
        if not self.sums:
            return {}
        keys = sorted(self.sums)  # the same order on every rank
        stacked = torch.stack([self.sums[k] for k in keys])
        if world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(stacked)
            stacked /= world_size
        values = stacked.cpu().tolist()
        out = {k: v / self.counts[k] for k, v in zip(keys, values)}
        self.sums.clear()
        self.counts.clear()
        return out


class RunLogger:
    """Appends one JSON line per log interval and mirrors it to TensorBoard (rank 0 only)."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        if enabled:
            try:  # an optional part: pip install 'ganforge[tensorboard]'
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                return  # metrics.jsonl, the plots and the reports have everything; TensorBoard only mirrors it
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)

    def truncate_after(self, step: int) -> None:
        """On resume, drop lines logged after the checkpoint (and a line cut short by a kill) so the
        log matches the weights."""
        if not self.enabled or not self.path.exists():
            return
        keep = [json.dumps(r) for r in _records(self.path) if r.get("step", 0) <= step]
        write_text(self.path, "".join(line + "\n" for line in keep))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _records(path: Path) -> list[dict]:
    """The JSON lines of a log; a line cut short by a kill (or otherwise not a JSON object) is skipped."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def read_log(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return _records(path) if path.exists() else []
