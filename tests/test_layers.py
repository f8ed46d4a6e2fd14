"""The house stays standing: no import cycle among the package's modules and no import against the layer order.

Every import counts (module level, inside functions, under ``TYPE_CHECKING``): a type-only cycle is still a
cycle, and a lazy upward import is still an upward import. See docs/architecture.md for the picture.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import fal_notebook

PACKAGE = Path(fal_notebook.__file__).parent
BASE = {"errors", "config", "media", "_portal", "_version"}
TOP = {"__init__", "__main__"}

# layer → the layers it may import (its own always included). Down the list only.
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "catalog": {"base"},
    "client": {"base", "catalog"},
    "store": {"base", "catalog"},
    "runtime": {"store", "client", "catalog", "base"},
    "jobs": {"runtime", "store", "client", "catalog", "base"},
    "skill": {"jobs", "runtime", "store", "client", "catalog", "base"},  # the original skill's Python names
    "parsers": {"catalog", "base"},
    "views": {"catalog", "base"},
    "notebook": {"parsers", "views", "jobs", "runtime", "store", "client", "catalog", "base"},
    "cli": {"parsers", "views", "jobs", "runtime", "store", "client", "catalog", "base", "emulator"},
    "emulator": {"catalog", "base"},
    "top": {"cli", "notebook", "skill", "parsers", "views", "jobs", "runtime", "store", "client", "catalog", "base",
            "emulator"},
}
# third-party packages a layer must never import
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "base": {"httpx", "IPython", "ipywidgets", "anywidget", "starlette"},
    "catalog": {"httpx", "IPython", "ipywidgets", "anywidget"},
    "client": {"IPython", "ipywidgets", "anywidget", "sqlite3"},
    "store": {"httpx", "IPython", "ipywidgets", "anywidget"},
    "runtime": {"httpx", "IPython", "ipywidgets", "anywidget"},
    "jobs": {"httpx", "IPython", "ipywidgets", "anywidget"},
    "skill": {"httpx", "IPython", "ipywidgets", "anywidget"},
    "parsers": {"httpx", "IPython", "ipywidgets", "anywidget"},
    "views": {"httpx", "IPython", "ipywidgets", "anywidget", "sqlite3"},
    "emulator": {"httpx", "IPython", "ipywidgets", "anywidget"},
}
HTTPX_ONLY_IN = {"client", "cli", "top"}  # the CLI may not import it either, but may import client


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    return ".".join((root.name, *rel.parts))


def layer_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] in TOP:
        return "top"
    head = parts[0]
    if head in BASE:
        return "base"
    if head in ALLOWED:
        return head
    raise AssertionError(f"{module}: not in any layer; add it to a layer folder (tests/test_layers.py)")


def imports_of(path: Path, module: str, modules: set[str]) -> set[tuple[str, int]]:
    """Every import in the file (any depth), as (imported module or package, line)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if path.name == "__init__.py":
        package = package[:-1]
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name, node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{target}.{alias.name}"
                found.add((sub if sub in modules else target, node.lineno))
    return found


def graph(root: Path) -> tuple[dict[str, set[tuple[str, int]]], dict[str, str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    names = {m.removesuffix(".__init__") for m in files} | set(files)
    edges: dict[str, set[tuple[str, int]]] = {}
    for module, path in files.items():
        node = module.removesuffix(".__init__")
        edges[node] = imports_of(path, module, names)
    return edges, {m.removesuffix(".__init__"): str(p) for m, p in files.items()}


def problems(root: Path) -> list[str]:
    edges, paths = graph(root)
    own = root.name
    found: list[str] = []
    internal: dict[str, set[str]] = {}
    for module, targets in sorted(edges.items()):
        layer = layer_of(module)
        for target, line in sorted(targets):
            top = target.split(".")[0]
            where = f"{paths[module]}:{line}"
            if top != own:
                if top in FORBIDDEN_THIRD_PARTY.get(layer, set()):
                    found.append(f"{where}: the {layer} layer imports {top}")
                elif top == "httpx" and layer not in HTTPX_ONLY_IN:
                    found.append(f"{where}: httpx is imported outside client/")
                continue
            if target == own:
                if layer != "top":
                    found.append(f"{where}: {module} imports the package face; import the module instead")
                continue
            # the module a target names: itself if it is one, else its nearest enclosing package
            while target not in edges and "." in target:
                target = target.rsplit(".", 1)[0]
            internal.setdefault(module, set()).add(target)
            other = layer_of(target)
            if other != layer and other not in ALLOWED[layer]:
                found.append(f"{where}: {module} ({layer}) imports {target} ({other}) against the layer order")
    found += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(internal)]
    return found


def cycles(internal: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the package is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in internal.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1 or node in internal.get(node, ()):
                components.append(sorted(component))

    for node in sorted(internal):
        if node not in index:
            visit(node)
    return components


def test_no_cycle_and_no_upward_import():
    assert problems(PACKAGE) == []


def test_only_the_base_modules_sit_at_the_top():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose <= {"__init__.py", "__main__.py", "_version.py", "_portal.py", "errors.py", "config.py",
                     "media.py", "jobs.py"}


def private_imports(root: Path) -> list[str]:
    """``from module import _name`` across modules: a private name belongs to its own module (a private
    *module* of the same folder, e.g. ``catalog._spec`` inside ``catalog/``, is that folder's business)."""
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__") and not (
                            (path.parent / f"{alias.name}.py").exists() and node.level == 1 and not node.module):
                        found.append(f"{path}:{node.lineno}: imports the private {alias.name} of {node.module}")
    return found


def test_no_module_imports_another_modules_private_names():
    assert private_imports(PACKAGE) == []


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "fal_notebook"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.mp4"))
    return root


@pytest.mark.parametrize(("file", "line", "expected"), [
    ("store/db.py", "from ..runtime import manager\n", "against the layer order"),
    ("client/wire.py", "from ..notebook import magics\n", "against the layer order"),
    ("views/html.py", "import IPython\n", "imports IPython"),
    ("catalog/validate.py", "import httpx\n", "imports httpx"),
    ("emulator/app.py", "from ..client import queue\n", "against the layer order"),
    ("errors.py", "def f():\n    from .store import db\n", "against the layer order"),
])
def test_the_check_fails_on_an_upward_import(tmp_path, file, line, expected):
    root = _copy(tmp_path)
    target = root / file
    target.write_text(target.read_text() + "\n" + line)
    found = problems(root)
    assert any(expected in p and file.split("/")[-1] in p for p in found), found


def test_the_check_fails_on_a_cycle_even_a_type_only_one(tmp_path):
    root = _copy(tmp_path)
    target = root / "client" / "wire.py"
    target.write_text(target.read_text() + "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from .queue import AsyncQueueClient\n")
    found = problems(root)
    assert any(p.startswith("import cycle:") and "fal_notebook.client.wire" in p for p in found), found


def test_the_check_fails_on_a_private_import(tmp_path):
    root = _copy(tmp_path)
    target = root / "notebook" / "panel" / "records.py"
    target.write_text(target.read_text() + "\nfrom ...views.card_data import _thumbnail\n")
    assert any("private _thumbnail" in p for p in private_imports(root))
