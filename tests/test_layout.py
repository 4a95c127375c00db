"""The engine's layout: packages along the data's way, imports only downwards, short modules.

    foundation (errors, files, settings, secrets) < models < stores < ingest | answering < engine

ingest and answering stand side by side: neither imports the other.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "retrieval"
FOUNDATION = {"errors", "files", "settings", "secrets"}
FLOORS = {"foundation": 0, "models": 1, "stores": 2, "ingest": 3, "answering": 3, "engine": 4}
PACKAGES = ("models", "stores", "ingest", "answering")
LONGEST = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every `retrieval...` module that `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "retrieval" or name.startswith("retrieval.")}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in FOUNDATION:
        return "foundation"
    return parts[1]


MODULES = {_module_name(path): path for path in sorted(ENGINE.rglob("*.py"))}


def test_every_engine_module_belongs_to_a_known_layer():
    assert {_layer(module) for module in MODULES} == set(FLOORS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_only_down_the_layers(module):
    mine = _layer(module)
    upward = [
        name for name in _imports(MODULES[module]) if _layer(name) != mine and FLOORS[_layer(name)] >= FLOORS[mine]
    ]
    assert not upward, f"{module} ({mine}) imports from a layer at or above its own: {upward}"


def test_the_engine_modules_import_no_circle():
    graph = {module: {name for name in _imports(path) if name in MODULES} for module, path in MODULES.items()}
    state: dict[str, int] = defaultdict(int)  # 0 unseen, 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in graph[module]:
            assert state[name] != 1, f"import circle: {' -> '.join([*path, module, name])}"
            if state[name] == 0:
                visit(name, [*path, module])
        state[module] = 2

    for module in graph:
        if state[module] == 0:
            visit(module, [])


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_what_it_is_for_and_what_it_may_import(package):
    docstring = ast.get_docstring(ast.parse((ENGINE / package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring and len(docstring.splitlines()) <= 2
    assert "May import" in docstring or "under its rule" in docstring


def test_no_module_is_longer_than_about_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for folder in ("retrieval", "bot", "training")
        for path in (ROOT / folder).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > LONGEST
    }
    assert not long, f"split these by job: {long}"


def test_no_two_engine_modules_have_names_a_newcomer_could_confuse():
    """No singular and plural of one word (store.py beside stores.py), and a file name appears once,
    except for the parallel backends of one package (stores/embedded/backend.py, stores/milvus/backend.py)."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in MODULES.values():
        if path.stem != "__init__":
            by_stem[path.stem.rstrip("s")].append(path)
    for stem, paths in by_stem.items():
        parents = {path.parent.parent for path in paths}
        assert len(paths) == 1 or (len(parents) == 1 and len({p.name for p in paths}) == 1), (stem, paths)
