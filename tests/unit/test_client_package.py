"""The client distribution's shape (layers/client): its modules import each other in one direction only,
the wire schemas import nothing but msgspec and the standard library, the client nothing of the server,
and its dependency bounds are the root pyproject's."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from stage1_local.template import REPO

CLIENT_DIST = REPO / "layers" / "client"
PACKAGES = ("stage1_client", "stage1_wire")
SERVER = {"stage1", "stage1_local", "litestar", "psycopg", "psycopg_pool", "boto3", "botocore", "questdb", "mangum"}
# Imported lazily, only by the code that needs them (the `frames` extra).
OPTIONAL = {"pyarrow", "pandas"}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((CLIENT_DIST / package).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level) for every import in the file, TYPE_CHECKING blocks included."""
    out = []
    tree = ast.parse(path.read_text())
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, id(node) in top_level))
            out += [(f"{node.module}.{alias.name}", id(node) in top_level) for alias in node.names]
    return out


def test_no_import_circle_among_the_client_and_wire_modules():
    mods = modules()
    graph = {name: sorted({m for m, _ in imports(path) if m in mods and m != name}) for name, path in mods.items()}
    for name in mods:  # a package imports its submodules only lazily (__getattr__), never back-imported
        graph.setdefault(name, [])
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, f"import circle: {' -> '.join([*trail, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_wire_imports_only_msgspec_and_the_standard_library():
    for name, path in modules().items():
        if not name.startswith("stage1_wire"):
            continue
        for module, _ in imports(path):
            top = module.split(".")[0]
            assert top in {"msgspec", "stage1_wire", "__future__"} or top in sys.stdlib_module_names, (
                f"{name} imports {module}")


def test_client_imports_nothing_of_the_server_and_its_extras_lazily():
    for name, path in modules().items():
        for module, top_level in imports(path):
            top = module.split(".")[0]
            assert top not in SERVER, f"{name} imports {module}"
            assert not (top in OPTIONAL and top_level), f"{name} imports {module} at module level (an extra)"


def _deps(pyproject: Path) -> dict[str, str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return {Requirement(r).name: str(Requirement(r).specifier) for r in project["dependencies"]}


def test_client_distribution_dependencies_match_the_root_bounds():
    project = tomllib.loads((CLIENT_DIST / "pyproject.toml").read_text())["project"]
    assert project["name"] == "stage1-client"
    assert project["scripts"] == {"stage1": "stage1_client.cli:run"}
    client = _deps(CLIENT_DIST / "pyproject.toml")
    assert set(client) == {"httpx", "msgspec", "rich"}
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    root_deps = _deps(REPO / "pyproject.toml")
    root_deps["rich"] = str(Requirement(root["project"]["optional-dependencies"]["cli"][0]).specifier)
    assert {k: root_deps[k] for k in client} == client
    assert root["project"]["scripts"]["stage1"] == project["scripts"]["stage1"]
    frames = {Requirement(r).name: str(Requirement(r).specifier) for r in project["optional-dependencies"]["frames"]}
    assert frames["pyarrow"] == root_deps["pyarrow"]
