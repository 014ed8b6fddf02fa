"""Training progress for a person: on a terminal a bar that fits 80 columns; anywhere else (a log file,
nohup, a cluster job, CI) a plain line every few seconds, flushed, so a log shows the run as it goes.

Both show the step, images per second, the main losses, the ETA and the health warnings; every loss
is in the run's metrics.jsonl and TensorBoard logs.
"""
from __future__ import annotations

import os
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..console import err, line

PLAIN_SECONDS = 30.0  # between plain progress lines; GANFORGE_PROGRESS_SECONDS sets another
SHOWN_LOSSES = 2  # losses on the bar; the plain line shows them all
ESTIMATE_AFTER = 3.0  # seconds of timed steps (after the first, which warms up) before the duration estimate


def _clock(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class TrainProgress:
    def __init__(self, total: int, completed: int, enabled: bool, terminal: bool | None = None,
                 every: float | None = None) -> None:
        self.enabled, self.total, self.step, self.start_step = enabled, total, completed, completed
        self.terminal = err.is_terminal if terminal is None else terminal
        self.every = float(os.environ.get("GANFORGE_PROGRESS_SECONDS", PLAIN_SECONDS)) if every is None else every
        self.estimated = False
        self.timed_from: tuple[float, int] | None = None  # (time, step) after the warm-up step
        self.values: dict[str, float] = {}
        self.warnings: list[str] = []
        self.flags: list[str] = []
        self.started = self.last_line = time.perf_counter()
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(bar_width=16), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TextColumn("eta"), TimeRemainingColumn(),
            console=err, disable=not (enabled and self.terminal), transient=False, refresh_per_second=4,
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, status="")

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)
        if self.enabled and not self.terminal and self.step > self.start_step:
            self.plain_line()

    def advance(self) -> None:
        self.step += 1
        self.progress.advance(self.task)
        if self.enabled and not self.estimated:
            self.estimate()
        if self.enabled and not self.terminal and time.perf_counter() - self.last_line >= self.every:
            self.plain_line()

    def estimate(self) -> None:
        """Once, early: how long the rest will take on this machine, and how to shorten it."""
        now = time.perf_counter()
        if self.timed_from is None:
            self.timed_from = (now, self.step)
            return
        t0, s0 = self.timed_from
        if now - t0 < ESTIMATE_AFTER and self.step < self.total:
            return
        self.estimated = True
        left = (now - t0) / max(self.step - s0, 1) * (self.total - self.step)
        if left < 60:
            return  # a short run needs no warning
        minutes = f"{left / 60:.0f} min" if left < 5400 else f"{left / 3600:.1f} h"
        text = (f"estimated: about {minutes} for the remaining {self.total - self.step:,} steps on this machine; "
                "--steps N shortens it (Ctrl-C stops with a checkpoint, --resume continues)")
        if self.terminal:
            self.progress.console.print(text, soft_wrap=True)
        else:
            line(text)

    def reset_to(self, step: int) -> None:
        """After a rollback: the bar goes back to ``step``."""
        self.step = step
        self.progress.update(self.task, completed=step)

    def show(self, values: dict[str, float], warnings: list[str], flags: list[str] = ()) -> None:
        """The latest logged ``values``; ``warnings`` in words (the plain line), ``flags`` their short names
        (the bar)."""
        self.values, self.warnings, self.flags = values, warnings, list(flags)
        losses = [(k.split("/", 1)[1], v) for k, v in values.items() if k.startswith("Loss/") and k.count("/") == 1]
        parts = [f"{values.get('Timing/img_per_s', 0):.0f} img/s"]
        parts += [f"{k} {v:.3f}" for k, v in losses[:SHOWN_LOSSES]]
        parts += [f"[yellow]! {f}[/yellow]" for f in self.flags]  # the words are in the log and the report
        self.progress.update(self.task, status=" ".join(parts))

    def plain_line(self) -> None:
        """``step 1200/3000 (40%) | 2482 img/s | D 0.607 | G 2.130 | 0:01:20, eta 0:00:40 | ! collapse ...``"""
        now = time.perf_counter()
        self.last_line = now
        done = self.step - self.start_step
        eta = (now - self.started) / done * (self.total - self.step) if done else 0.0
        parts = [f"step {self.step}/{self.total} ({100 * self.step // max(self.total, 1)}%)"]
        if "Timing/img_per_s" in self.values:
            parts.append(f"{self.values['Timing/img_per_s']:.0f} img/s")
        parts += [f"{k.split('/', 1)[1]} {v:.4g}" for k, v in self.values.items() if k.startswith("Loss/")]
        parts.append(f"{_clock(now - self.started)}, eta {_clock(eta)}")
        parts += [f"! {w}" for w in self.warnings]
        line(" | ".join(parts))
