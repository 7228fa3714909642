"""Package every zip function of template.yaml as Lambda receives it and report its unzipped size.

    python -m stage1_local.package_report            the table (make package-report)
    python -m stage1_local.package_report --check    also exit 1 when a function is over its budget
    python -m stage1_local.package_report --json     machine-readable

A function's package is its CodeUri folder, the dependencies of its own requirements.txt (if any) and
every layer it gets (Globals + its own `Layers`), each layer built by the same code `sam build` runs
(layers/stage1/build_layer.py, run by the runtime's python3.12 as `sam build` runs it: the locked
dependencies installed for CPython 3.12 manylinux x86_64, whatever machine this is). Builds are cached
under $STAGE1_CACHE_DIR/lambda-package, keyed by the lock.
Lambda's limit is 250 MB unzipped for a function and all its layers together; our budget for each zip
function is far below it (API_BUDGET), so the API stays small and starts fast. Image functions
(PackageType: Image, 10 GB limit) are listed but not measured here.

The report also lists third-party imports reachable from a handler (through the `stage1` package) that
the package does not contain: an import at module level fails the handler's import; one inside a
function fails only when that code path runs on AWS, so both are shown.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from stage1_local.sam import RUNTIME_PYTHON, runtime_python
from stage1_local.template import REPO, Function, functions, load_template

MB = 1024 * 1024
LAMBDA_UNZIPPED_LIMIT = 250 * MB
# Every zip function (the API functions, the authorizer in front of them, the sweeper) stays under this.
API_BUDGET = 50 * MB
CACHE = Path(os.environ.get("STAGE1_CACHE_DIR") or Path.home() / ".cache" / "stage1").resolve() / "lambda-package"
PLATFORM = ["--platform", "manylinux_2_34_x86_64", "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux2014_x86_64", "--python-version", "3.12", "--implementation", "cp",
            "--only-binary=:all:"]
# What SAM's python builder leaves out when it copies a CodeUri folder; and node_modules, which the web
# function's makefile build (functions/web/Makefile: app.py + dist/ only) never ships.
_SKIP = {"__pycache__", ".aws-sam", ".git", ".pytest_cache", ".ruff_cache", ".DS_Store", "node_modules"}


@dataclass
class Layer:
    name: str
    site: Path  # the folder that is /opt/python on Lambda
    bytes: int = 0
    top: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Package:
    function: str
    kind: str  # "api" (has HttpApi routes), "event" (other zip function) or "image"
    handler: str
    code_bytes: int = 0
    deps_bytes: int = 0
    layers: dict[str, int] = field(default_factory=dict)
    total: int = 0
    budget: int = API_BUDGET
    sys_path: list[str] = field(default_factory=list)  # Lambda's order: code, own deps, layers
    unpackaged: list[str] = field(default_factory=list)

    @property
    def within_budget(self) -> bool:
        return self.kind == "image" or self.total <= min(self.budget, LAMBDA_UNZIPPED_LIMIT)


# ---------------------------------------------------------------------------------------------- sizes
def tree_bytes(path: Path, *, source: bool = False) -> int:
    """Unzipped size as Lambda counts it: the bytes of every regular file. `source=True` for a CodeUri
    folder, which SAM copies without caches and byte code; built trees count everything."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in _files(path, source))


def _files(root: Path, source: bool) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        if source:
            dirnames[:] = [d for d in dirnames if d not in _SKIP]
        for name in filenames:
            if source and (name in _SKIP or name.endswith(".pyc")):
                continue
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                yield p


def top_entries(site: Path, n: int = 8) -> list[tuple[str, int]]:
    sizes = [(entry.name, tree_bytes(entry)) for entry in site.iterdir()]
    return sorted(sizes, key=lambda kv: -kv[1])[:n]


# --------------------------------------------------------------------------------------------- builds
def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes() if p.is_file() else b"-")
    return h.hexdigest()[:16]


def _locked(name: str) -> Any:
    CACHE.mkdir(parents=True, exist_ok=True)
    lock = open(CACHE / f"{name}.lock", "w")  # noqa: SIM115 - held until the caller closes it
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def _load_build_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"stage1_build_{_digest(path)}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _template_layers() -> dict[str, dict[str, Any]]:
    resources = load_template().get("Resources") or {}
    return {k: v for k, v in resources.items() if v.get("Type") == "AWS::Serverless::LayerVersion"}


def build_layer(name: str) -> Layer:
    """A template layer, built as `sam build` builds it, into the cache. The dependencies are reused
    while the lock and build script are unchanged. Every build goes to a folder named by what went in
    and is never rewritten in place, so concurrent test runs never see a half-built layer."""
    resource = _template_layers()[name]
    content = REPO / str(resource["Properties"]["ContentUri"])
    script = content / "build_layer.py"
    module = _load_build_script(script) if script.is_file() else None
    # Packages the build script takes from outside its folder (stage1_wire) key the cache too.
    extra = [p for p in getattr(module, "PACKAGES", {}).values() if not p.is_relative_to(content)]
    key = _tree_digest(content, *extra)
    out = CACHE / f"{name}-{key}"
    if not (out / ".complete").exists():
        tmp = CACHE / f".tmp-{name}-{os.getpid()}-{key}"
        shutil.rmtree(tmp, ignore_errors=True)
        if module is not None:  # BuildMethod: makefile → build_layer.py (stdlib only)
            deps = CACHE / f"{name}-deps-{_digest(script, module.LOCK)}" / "python"
            with _locked(f"{name}-deps"):
                if not (deps.parent / ".complete").exists():
                    shutil.rmtree(deps.parent, ignore_errors=True)
                    _run_build_script(script, "deps", deps)
                    (deps.parent / ".complete").touch()
            shutil.copytree(deps, tmp / "python", copy_function=_link_or_copy)
            _run_build_script(script, "package", tmp / "python")
        else:  # SAM's python builder: requirements.txt installed next to the folder's content
            req = content / "requirements.txt"
            shutil.copytree(content, tmp / "python", ignore=shutil.ignore_patterns(*_SKIP, "*.pyc", "*.egg-info"))
            if req.is_file():
                _pip_target(req, tmp / "python")
        (tmp / ".complete").touch()
        try:
            tmp.rename(out)
        except OSError:  # another process built the same content first
            shutil.rmtree(tmp, ignore_errors=True)
        _prune(name, keep=out)
    site = out / "python"
    return Layer(name, site, tree_bytes(site), top_entries(site))


def _run_build_script(script: Path, command: str, target: Path) -> None:
    """build_layer.py under the runtime's interpreter (as `sam build` runs it), so the byte code it ships
    is the runtime's (a .pyc of another version is ignored by Lambda's Python, and recompiled each cold start)."""
    python = runtime_python()
    if python is None:
        raise SystemExit(f"package_report: no runnable {RUNTIME_PYTHON} (the functions' runtime) on PATH or in pyenv")
    env = {**os.environ, "STAGE1_LAYER_SOURCE": str(script.parent), "PIP_NO_WARN_SCRIPT_LOCATION": "1"}
    subprocess.run([str(python), str(script), command, str(target)], check=True, env=env)


def _tree_digest(root: Path, *extra: Path) -> str:
    """Content hash of a source folder and any `extra` folders (paths and bytes; caches and byte code ignored)."""
    h = hashlib.sha256()
    for base in (root, *extra):
        prefix = "" if base == root else f"{base.name}/"
        for path in sorted(_files(base, source=True)):
            h.update(f"{prefix}{path.relative_to(base)}".encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _prune(name: str, keep: Path, max_age: float = 3600.0) -> None:
    """Drop builds of other content older than an hour (a concurrent run may still read a newer one)."""
    now = time.time()
    for old in CACHE.glob(f"{name}-*"):
        if (old.is_dir() and old != keep and not old.name.startswith(f"{name}-deps-")
                and now - old.stat().st_mtime > max_age):
            shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _pip_target(requirements: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--target",
                    str(target), *PLATFORM, "-r", str(requirements)], check=True)


def function_deps(fn: Function) -> Path | None:
    """The function's own requirements.txt, installed for the runtime (cached by its content)."""
    req = fn.code_uri / "requirements.txt"
    if not req.is_file():
        return None
    site = CACHE / f"fn-{fn.name}-{_digest(req)}"
    with _locked(f"fn-{fn.name}"):
        if not (site / ".complete").exists():
            shutil.rmtree(site, ignore_errors=True)
            _pip_target(req, site)
            (site / ".complete").touch()
    return site


def function_layers(name: str) -> list[str]:
    """Logical ids of the template layers a function gets: Globals first, then its own (SAM's order)."""
    template = load_template()
    glob = ((template.get("Globals") or {}).get("Function") or {}).get("Layers") or []
    own = ((template["Resources"][name].get("Properties") or {}).get("Layers")) or []
    out = []
    for ref in [*glob, *own]:
        target = ref.get("Ref") if isinstance(ref, dict) else None
        if target is None:
            raise ValueError(f"{name}: layer {ref!r} is not a !Ref to a template layer; cannot measure it")
        out.append(target)
    return out


# ------------------------------------------------------------------------------------ import analysis
def _module_file(module: str, roots: list[Path]) -> Path | None:
    rel = module.replace(".", "/")
    for root in roots:
        for candidate in (root / f"{rel}.py", root / rel / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _available(top: str, paths: list[Path]) -> bool:
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    return any((p / top).is_dir() or (p / f"{top}.py").is_file() or any(p.glob(f"{top}.*.so")) for p in paths)


class _Imports(ast.NodeVisitor):
    """(module, line, lazy) of every absolute import, skipping `if TYPE_CHECKING:` blocks and imports
    guarded by `except ImportError`."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.depth = 0
        self.found: list[tuple[str, int, bool]] = []

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        names = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
        if names & {"ImportError", "ModuleNotFoundError", "(ImportError, ModuleNotFoundError)"}:
            return
        self.generic_visit(node)

    def _scoped(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scoped

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, node.lineno, self.depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # relative: resolve against the importing package
            base = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        self.found.append((module, node.lineno, self.depth > 0))
        for alias in node.names:  # `from stage1.x import submodule`
            self.found.append((f"{module}.{alias.name}", node.lineno, self.depth > 0))


def unpackaged_imports(handler_file: Path, code_dir: Path, paths: list[Path]) -> list[str]:
    """Third-party modules reachable from the handler (following imports into `stage1` and the
    function's own modules) that none of `paths` provides."""
    roots = [code_dir, *paths]
    seen: set[Path] = set()
    queue: list[tuple[Path, str]] = [(handler_file, handler_file.stem)]
    problems: dict[str, list[str]] = {}
    while queue:
        file, modname = queue.pop()
        if file in seen:
            continue
        seen.add(file)
        package = modname if file.name == "__init__.py" else modname.rpartition(".")[0]
        visitor = _Imports(package or modname)
        visitor.visit(ast.parse(file.read_text(), str(file)))
        for module, line, lazy in visitor.found:
            top = module.split(".")[0]
            target = _module_file(module, roots)
            if target is not None and (top == "stage1" or target.is_relative_to(code_dir)):
                queue.append((target, module))
                continue
            if not top or _available(top, roots):
                continue
            kind = "in a function" if lazy else "at module level"
            where = f"{_rel(file, roots)}:{line} {kind}"
            if where not in problems.setdefault(top, []):
                problems[top].append(where)
    return [f"{top} ({'; '.join(sorted(places))})" for top, places in sorted(problems.items())]


def _rel(path: Path, roots: list[Path]) -> str:
    for base in [*roots, REPO]:
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    return str(path)


# --------------------------------------------------------------------------------------------- report
def kind_of(fn: Function) -> str:
    if fn.package_type == "Image":
        return "image"
    return "api" if fn.routes else "event"


def package(fn: Function, layers: dict[str, Layer]) -> Package:
    pkg = Package(fn.name, kind_of(fn), fn.handler)
    if pkg.kind == "image":
        return pkg
    pkg.code_bytes = tree_bytes(fn.code_uri, source=True)
    deps = function_deps(fn)
    pkg.deps_bytes = tree_bytes(deps) if deps else 0
    paths = [fn.code_uri, *([deps] if deps else [])]
    for name in function_layers(fn.name):
        if name not in layers:
            layers[name] = build_layer(name)
        pkg.layers[name] = layers[name].bytes
        paths.append(layers[name].site)
    pkg.total = pkg.code_bytes + pkg.deps_bytes + sum(pkg.layers.values())
    pkg.sys_path = [str(p) for p in paths]
    module = fn.handler.rpartition(".")[0].replace(".", "/")
    pkg.unpackaged = unpackaged_imports(fn.code_uri / f"{module}.py", fn.code_uri, paths[1:])
    return pkg


def report() -> tuple[list[Package], dict[str, Layer]]:
    layers: dict[str, Layer] = {}
    packages = [package(fn, layers) for fn in sorted(functions().values(), key=lambda f: (kind_of(f), f.name))]
    return packages, layers


def _mb(n: int) -> str:
    return f"{n / MB:7.2f}"


def render(packages: list[Package], layers: dict[str, Layer]) -> str:
    lines = [f"Lambda zip limit: {LAMBDA_UNZIPPED_LIMIT // MB} MB unzipped (function + layers); "
             f"budget per zip function: {API_BUDGET // MB} MB. Sizes in MB (2^20 bytes), unzipped.", ""]
    head = f"{'function':<24} {'kind':<6} {'code':>7} {'deps':>7} {'layers':>7} {'total':>7}  {'of 250':>6}  status"
    lines += [head, "-" * len(head)]
    for p in packages:
        if p.kind == "image":
            lines.append(f"{p.function:<24} {'image':<6} {'':>7} {'':>7} {'':>7} {'':>7}  {'':>6}  "
                         "container image (10 GB limit): built where Docker exists")
            continue
        share = f"{100 * p.total / LAMBDA_UNZIPPED_LIMIT:5.1f}%"
        status = "ok" if p.within_budget else f"OVER BUDGET ({p.budget // MB} MB)"
        lines.append(f"{p.function:<24} {p.kind:<6} {_mb(p.code_bytes)} {_mb(p.deps_bytes)} "
                     f"{_mb(sum(p.layers.values()))} {_mb(p.total)}  {share:>6}  {status}")
    for layer in layers.values():
        lines += ["", f"layer {layer.name}: {layer.bytes / MB:.2f} MB; largest entries:"]
        lines += [f"  {name:<28} {_mb(size)}" for name, size in layer.top]
    flagged = [p for p in packages if p.unpackaged]
    if flagged:
        lines += ["", "imports reachable from a handler that its package does not contain (they fail on AWS "
                  "when that code runs):"]
        for p in flagged:
            lines += [f"  {p.function}: {item}" for item in p.unpackaged]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stage1_local.package_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a zip function is over its budget")
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args(argv)
    packages, layers = report()
    if ns.json:
        print(json.dumps({"limit": LAMBDA_UNZIPPED_LIMIT, "budget": API_BUDGET,
                          "functions": [asdict(p) for p in packages],
                          "layers": {k: {"bytes": v.bytes, "top": v.top} for k, v in layers.items()}}, indent=2))
    else:
        print(render(packages, layers))
    over = [p.function for p in packages if not p.within_budget]
    if ns.check and over:
        print(f"\nover budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
