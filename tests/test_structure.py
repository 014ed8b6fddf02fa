"""The layers hold: every module of the package has a rank, no import (module-level or inside a function,
followed through the whole graph) reaches a module of a higher rank, and no import circle exists.

The ranks, bottom to top (README, "Architecture"):

0  foundation: errors, console, io, version, registry, extras, text, augment, demo_page, nn/, losses/
1  config
2  models/, data/, ada
3  runs/ (checkpoints, run directories, pictures, provenance)
4  inference/ (drawing, latent control, tiling, upscaling)
5  metrics/
6  inference/ above the metrics: perceptual distance, projection, latent directions, the pipelines load() returns
7  recipes/ (one file per method: everything that depends on the method)
8  measure (the one way to measure a run)
9  train/ (the engine, reports, model card)
10 the face: api, evaluation, sampling, editing, translation, superres, compare, export, server, cli, the package
"""
import ast
import re
import shutil
from fnmatch import fnmatch
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "ganforge"

LAYERS = [
    ["errors", "console", "io", "version", "registry", "extras", "text", "augment", "demo_page", "nn", "nn.*", "losses",
     "losses.*"],
    ["config"],
    ["models", "models.*", "data", "data.*", "ada"],
    ["runs", "runs.*"],
    ["inference", "inference.drawing", "inference.control", "inference.tiling", "inference.upscaling"],
    ["metrics", "metrics.*"],
    ["inference.perceptual", "inference.encoder", "inference.inversion", "inference.directions",
     "inference.pipelines", "inference.clips"],
    ["recipes", "recipes.*"],
    ["measure"],
    ["train", "train.*"],
    ["api", "evaluation", "sampling", "editing", "translation", "superres", "compare", "export", "server", "cli",
     "__main__", ""],
]


def module_name(path: Path, root: Path) -> str:
    """``data/base.py`` -> ``data.base``; a package's ``__init__.py`` -> the package (``""`` for the top)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(path: Path, root: Path, known: set[str]) -> set[str]:
    """Every package module a file imports, anywhere in it (lazy imports and TYPE_CHECKING blocks included),
    relative imports resolved; ``from X import name`` counts as importing ``X.name`` when that is a module."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "ganforge":
                parts = node.module.split(".")[1:]
            else:
                continue
            target = ".".join(parts)
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                out.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ganforge":
                    out.add(".".join(alias.name.split(".")[1:]))
    return {m for m in out if m != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    found = modules(root)
    return {name: imports_of(path, root, set(found)) for name, path in found.items()}


def rank(module: str) -> int | None:
    for i, patterns in enumerate(LAYERS):
        if any(module == p or fnmatch(module, p) for p in patterns):
            return i
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} (rank {rank(a)}) imports {b} (rank {rank(b)})" for a, targets in sorted(graph.items())
            for b in sorted(targets) if rank(a) is not None and rank(b) is not None and rank(b) > rank(a)]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph(SRC)


def test_every_module_has_a_rank(graph):
    assert [m for m in graph if rank(m) is None] == []


def test_no_import_runs_back_up(graph):
    assert upward_imports(graph) == []


def test_no_import_circle(graph):
    assert circles(graph) == []


def test_the_check_catches_an_upward_import_and_a_circle(tmp_path):
    """A copy of the package with one import added inside a function of a low module must fail both checks."""
    root = tmp_path / "ganforge"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__", "assets", "configs"))
    assert upward_imports(import_graph(root)) == [] and circles(import_graph(root)) == []
    data = root / "data" / "base.py"
    data.write_text(data.read_text() + "\n\ndef _sneaky():\n    from ..train import trainer  # noqa\n")
    graph = import_graph(root)
    assert "data.base (rank 2) imports train.trainer (rank 9)" in upward_imports(graph)
    assert any({"data.base", "train.trainer"} <= set(c) for c in circles(graph))


def test_a_new_module_without_a_rank_is_reported(tmp_path):
    root = tmp_path / "ganforge"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__", "assets", "configs"))
    (root / "somewhere.py").write_text("from .errors import GanforgeError\n")
    assert [m for m in import_graph(root) if rank(m) is None] == ["somewhere"]


# Recipe names that are also words of another meaning ("projection": finding an image's latent; "video": a data kind,
# a dataset, an extra; "cut": to cut clips into windows); for these only a quoted name on a line about a recipe, the
# way code would branch, counts.
ALSO_A_WORD = ("projection", "video", "cut")


def recipe_names_in(text: str, recipes: list[str]) -> list[str]:
    names = [n for n in recipes if n not in ALSO_A_WORD]
    words = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    quoted = re.compile(r"[\"'](" + "|".join(map(re.escape, ALSO_A_WORD)) + r")[\"']")
    return [m.group(0) for line in text.splitlines() for m in
            [*words.finditer(line), *(quoted.finditer(line) if "recipe" in line else ())]]


def test_only_recipes_models_and_configs_name_a_recipe():
    """Outside recipes/, models/ and configs/ nothing in the package names a method: the face, the engine
    and the measures ask the recipe (its pipeline, pictures, measures, config section) instead."""
    from ganforge.recipes import RECIPES

    hits = [f"{path.relative_to(SRC)}: {hit}" for path in sorted(SRC.rglob("*.py"))
            if path.relative_to(SRC).parts[0] not in ("recipes", "models", "configs")
            for hit in recipe_names_in(path.read_text(), RECIPES.list())]
    assert hits == []


def test_the_recipe_name_check_tells_a_word_from_a_recipe():
    recipes = ["cgan", "projection", "stylegan2"]
    assert recipe_names_in("the projection of an image into w", recipes) == []
    assert recipe_names_in('if cfg.recipe == "projection":', recipes) == ['"projection"']
    assert recipe_names_in('kind = "projection"  # a data kind', recipes) == []
    assert recipe_names_in("a cgan run, unlike stylegan2", recipes) == ["cgan", "stylegan2"]


def test_the_trainer_has_no_branch_on_a_recipe_kind():
    source = (SRC / "train" / "trainer.py").read_text()
    for flag in ("translates", "upscales", "texts", "has_styles", "conditional", "isinstance(self.recipe",
                 "cfg.recipe =="):
        assert flag not in source
