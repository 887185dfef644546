"""The package's shape: layers import only downward, no module over 400 lines, no function over 60, and no
command line reached from below (the figures and notebooks call the Python API, never argv)."""

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gse_explain"
#: Layer of each top-level module or subpackage, bottom to top. A module may import its own layer and below.
LAYERS = {"io": 0, "distances": 0, "data": 1, "models": 2, "attacks": 3, "evaluation": 4, "analysis": 5,
          "plotting": 6, "figures": 7, "evaluate": 8, "status": 8, "tune": 8}
#: Command-line modules: they parse arguments and may import any layer (including other CLIs' parsers).
CLIS = {"gse_explain/evaluate.py", "gse_explain/status.py", "gse_explain/figures/cli.py", "gse_explain/figures/__main__.py"}
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _layer_of(dotted: str) -> int | None:
    parts = dotted.split(".")
    if parts[0] != "gse_explain" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def _imports(path: Path) -> list[str]:
    """Absolute dotted names of the gse_explain modules ``path`` imports."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append(name)
        elif isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
    return [name for name in out if name.startswith("gse_explain")]


@pytest.mark.parametrize("path", [p for p in MODULES if _rel(p) not in CLIS and _rel(p) != "gse_explain/__init__.py"], ids=_rel)
def test_layers_import_only_downward(path):
    own = _layer_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
    upward = [name for name in _imports(path) if (_layer_of(name) or 0) > own]
    assert not upward, f"{_rel(path)} (layer {own}) imports upward: {upward}"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_modules_and_functions_are_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 400, f"{_rel(path)} has {len(text.splitlines())} lines (limit 400): split it"
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60]
    assert not long, f"{_rel(path)}: functions over 60 lines: {long}"


def _notebook_code(path: Path) -> str:
    return "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code")


@pytest.mark.parametrize("path", sorted((PACKAGE / "figures").glob("*.py")) + sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=_rel)
def test_figures_and_notebooks_use_the_python_api(path):
    text = _notebook_code(path) if path.suffix == ".ipynb" else path.read_text()
    for word in ("evaluate.main", "evaluate_argv", "SystemExit"):
        assert word not in text, f"{_rel(path)} uses {word}: call gse_explain.run / figures.reproduce instead"
