"""Optional parts of ganforge: what one command needs beyond the core install, and the one line that says
how to get it (``pip install 'ganforge[NAME]'``; ``ganforge[all]`` brings every one)."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import GanforgeError

EXTRAS = {"diffusers": "diffusion", "onnx": "export", "onnxscript": "export", "onnxruntime": "export",
          "imageio_ffmpeg": "video"}


def require(module: str, what: str) -> ModuleType:
    """Import an optional ``module`` that ``what`` needs, or refuse in one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise GanforgeError(f"{what} needs {module}, an optional part of ganforge: pip install "
                            f"'ganforge[{EXTRAS[module]}]' (or 'ganforge[all]')") from None
