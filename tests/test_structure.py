"""Imports only point down: the public face (api, evaluation, sampling, cli) calls the core
(train, recipes, models, metrics, data, config), never the reverse; config imports no recipe."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "ganforge"
FACE = {"api", "evaluation", "sampling", "cli", "server", "export", "demo_page", "compare"}


def imported_modules(path: Path) -> set[str]:
    """Top-level ganforge modules a file imports (relative imports resolved), lazy imports included."""
    package = path.relative_to(SRC.parent).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            parts = base + (node.module.split(".") if node.module else [])
            if parts[:1] == ["ganforge"]:
                names = [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
                out.update(names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("ganforge."))
    return out


CORE = sorted(p for sub in ("train", "recipes", "models", "metrics", "data", "losses", "nn")
              for p in (SRC / sub).glob("*.py")) + [SRC / "config.py", SRC / "drawing.py"]


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(SRC)))
def test_the_core_never_imports_the_public_face(path):
    assert not imported_modules(path) & FACE


def test_config_imports_no_recipe_or_trainer():
    assert not imported_modules(SRC / "config.py") & {"recipes", "train", "models", "metrics"}
