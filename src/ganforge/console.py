"""The one place that prints to the user: rich consoles for output and warnings."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    """One warning line on stderr."""
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    err.print(escape(message), soft_wrap=True)


def line(message: str) -> None:
    """One plain line on stderr, flushed at once (progress in a log file)."""
    print(message, file=sys.stderr, flush=True)
