"""The layers point one way (docs/DEVELOPING.md, "Layers"): read from the source of every module
(ast, no imports run), so a new upward import, a Litestar import below the web layer or an import
circle fails here before it fails on a cold start."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "stage1"
WIRE = ROOT / "layers" / "client"

# The same table as docs/DEVELOPING.md: (rank, name, module prefixes). The longest prefix decides
# (`stage1.jobs.sweeper` sweeps every area, so it sits with the areas, above the rest of `stage1.jobs`).
LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    (0, "wire", ("stage1_wire",)),
    (1, "core", ("stage1.core",)),
    (2, "shared domain", ("stage1.auth", "stage1.sql", "stage1.timeseries", "stage1.measurements", "stage1.jobs")),
    (3, "areas", ("stage1.datasets", "stage1.runs", "stage1.simulations", "stage1.uploads", "stage1.imports",
                  "stage1.exports", "stage1.health", "stage1.jobs.sweeper")),
    (4, "web", ("stage1.web",)),
    (5, "functions", ("functions",)),
]
WEB_RANK = 4
# Only the web layer and the functions may import these.
FRAMEWORK = ("litestar", "mangum")


def _modules() -> dict[str, pathlib.Path]:
    found: dict[str, pathlib.Path] = {}
    for base, pattern in ((LAYER, "stage1/**/*.py"), (WIRE, "stage1_wire/**/*.py"), (ROOT, "functions/*/*.py")):
        for path in base.glob(pattern):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    found.pop("stage1", None)  # the namespace's own __init__ (a docstring): below everything, imports nothing
    return found


MODULES = _modules()


def _layer(module: str) -> tuple[int, str]:
    best: tuple[int, int, str] | None = None
    for rank, name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, name)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and to docs/DEVELOPING.md"
    return best[1], best[2]


def _imports(path: pathlib.Path, *, top_level_only: bool) -> set[str]:
    """Modules imported by the file (a `from a import b` names a.b when that is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes: list[ast.AST] = []
    if top_level_only:
        # The module body, including `if`/`try` blocks, but not function or class bodies.
        stack: list[ast.AST] = list(tree.body)
        while stack:
            node = stack.pop()
            nodes.append(node)
            if isinstance(node, ast.If | ast.Try | ast.With):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    stack.extend(getattr(node, field, []))
            elif isinstance(node, ast.ExceptHandler):
                stack.extend(node.body)
    else:
        nodes = list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names
                       if f"{node.module}.{alias.name}" in MODULES)
    return out


def _ours(name: str) -> bool:
    return name.split(".")[0] in ("stage1", "stage1_wire", "functions")


def test_every_module_is_in_a_layer() -> None:
    assert len(MODULES) > 80
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_layer_above_it() -> None:
    upward = []
    for module, path in MODULES.items():
        rank, name = _layer(module)
        for target in _imports(path, top_level_only=False):
            if _ours(target) and target in MODULES:
                t_rank, t_name = _layer(target)
                if t_rank > rank:
                    upward.append(f"{module} ({name}) imports {target} ({t_name})")
    assert upward == []


def test_litestar_only_in_the_web_layer_and_the_functions() -> None:
    leaks = [f"{module} imports {target}" for module, path in MODULES.items() if _layer(module)[0] < WEB_RANK
             for target in _imports(path, top_level_only=False) if target.split(".")[0] in FRAMEWORK]
    assert leaks == []


def test_no_import_circle() -> None:
    """Among top-level imports (the ones that run when a module is first imported): a circle there
    fails or half-initialises a module depending on which one is imported first."""
    graph = {m: {t for t in _imports(p, top_level_only=True) if t in MODULES and t != m} for m, p in MODULES.items()}
    # A package's __init__ runs before its submodules: `import a.b` imports `a` too.
    for module in list(graph):
        for target in list(graph[module]):
            parts = target.split(".")
            graph[module].update(".".join(parts[:i]) for i in range(1, len(parts))
                                 if ".".join(parts[:i]) in MODULES and ".".join(parts[:i]) != module)
    assert _circles(graph) == []


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    work: list[tuple[str, Iterator[str]]] = []

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, iter(sorted(graph[node]))))

    for start in sorted(graph):
        if start in index:
            continue
        enter(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    enter(child)
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checks_see_a_violation() -> None:
    """The checks are not vacuous: a core module importing an area, or two modules importing each
    other, is reported."""
    assert _layer("stage1.core.db")[0] < _layer("stage1.datasets.service")[0] < _layer("stage1.web.app")[0]
    assert _layer("stage1.jobs.sweeper")[1] == "areas" and _layer("stage1.jobs.service")[1] == "shared domain"
    assert _circles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_table_is_the_one_in_developing_md() -> None:
    doc = (ROOT / "docs" / "DEVELOPING.md").read_text()
    for rank, name, prefixes in LAYERS:
        row = f"| {rank} | {name} | " + ", ".join(f"`{p}`" for p in prefixes) + " |"
        assert row in doc, f"docs/DEVELOPING.md lacks the layer row: {row}"
