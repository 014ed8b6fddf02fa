"""Name-keyed registries (timm style): ``@REG.register("name")``, ``REG.create(name, **kw)``."""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = fn
            self._help[name] = help or summary(fn.__doc__ or "")
            return fn

        return deco

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}{did_you_mean(name, self.list())}; choose from: "
                              f"{', '.join(self.list())}")
        return self._entries[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)

    def list(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def describe(self, name: str) -> str:
        return self._help.get(name, "")

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing when none is close."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def import_all(package: str, path: list[str], skip: tuple[str, ...] = ()) -> None:
    """Import every module of a package so its ``@REG.register`` decorators run: a new recipe or data source
    is a new file, and no list elsewhere has to learn its name."""
    for module in pkgutil.iter_modules(path):
        if module.name not in skip:
            importlib.import_module(f"{package}.{module.name}")


def summary(doc: str) -> str:
    """A docstring's first paragraph as one line of plain text (what ``ganforge list`` shows)."""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("``", "")
