"""A rich progress bar for training: step, images/s, latest losses, ETA."""
from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..console import err


class TrainProgress:
    def __init__(self, total: int, completed: int, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=err, disable=not enabled, transient=False, refresh_per_second=4,
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, status="")

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def advance(self) -> None:
        self.progress.advance(self.task)

    def show(self, values: dict[str, float], warnings: list[str]) -> None:
        parts = [f"{values.get('Timing/img_per_s', 0):.0f} img/s"]
        parts += [f"{k.split('/')[-1]} {v:.3f}" for k, v in values.items() if k.startswith("Loss/")]
        parts += [f"[yellow]! {w}[/yellow]" for w in warnings]
        self.progress.update(self.task, status=" | ".join(parts))
