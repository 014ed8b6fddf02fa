"""Atomic file writes: a kill at any moment leaves either the old file or the new one."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GanforgeError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=float) + "\n")


def save_npy(path: Path, array: np.ndarray) -> None:
    """An array as .npy, written atomically, never pickled."""
    with atomic_path(path) as tmp:
        np.save(tmp, array, allow_pickle=False)


MAX_ARRAY_BYTES = 8 << 30  # an .npy declaring more than this is refused before it is read


def read_array(path: Path, what: str, kinds: str = "biuf") -> np.ndarray:
    """A numeric ``.npy`` array, never unpickled: object, string and structured arrays, damaged
    files, absurd declared sizes and NaN/Inf values are refused in one line naming the file."""
    try:
        with open(path, "rb") as f:  # the header alone says what the file holds, before any data is read
            fmt = np.lib.format
            read_header = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as e:  # pickles, garbage, empty files
        raise GanforgeError(f"{what} {str(path)!r} is not a numeric .npy array ({str(e).splitlines()[0][:120]})") \
            from None
    if dtype.kind not in kinds or dtype.fields is not None:
        raise GanforgeError(f"{what} {str(path)!r} holds {dtype} values; expected a numeric array")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise GanforgeError(f"{what} {str(path)!r} declares {nbytes} bytes of data; the limit is {MAX_ARRAY_BYTES}")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # e.g. truncated data
        raise GanforgeError(f"{what} {str(path)!r} is not a numeric .npy array ({str(e).splitlines()[0][:120]})") \
            from None
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise GanforgeError(f"{what} {str(path)!r} holds {int((~np.isfinite(a)).sum())} NaN/Inf value(s); "
                            "expected finite numbers")
    return a
