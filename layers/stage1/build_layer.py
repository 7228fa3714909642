"""Build the shared Lambda layer exactly as Lambda receives it: `python/` = the `stage1` package, the wire
schemas it shares with the client (`stage1_wire`, from layers/client; the client itself, `stage1_client`,
is not shipped) and the API functions' dependencies, installed for the python3.12 runtime (Amazon Linux 2023,
glibc 2.34, so manylinux_2_34/2_28/2014 x86_64 wheels) whatever machine runs the build.

    python3.12 build_layer.py build <ARTIFACTS_DIR>   # what `sam build` runs (BuildMethod: makefile)
    python3.12 build_layer.py lock                    # re-resolve requirements.txt → requirements.lock
    python3 build_layer.py requirements [--check]     # write (or check) the requirements files from
                                                      # the root pyproject.toml's `layer`/`importer` extras

Standard library only: `sam build` runs it from a scratch copy of this folder, outside the project's venv.

Why not SAM's own pip builder: it installs every transitive dependency, and litestar's hard
dependencies include its CLI and test-data stack (Faker alone is 25 MB), never imported by an app.
The lock pins the resolved set minus `EXCLUDED` (each with its reason) and is installed `--no-deps`
with hashes; botocore keeps the API models of the services the code uses only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
LOCK = HERE / "requirements.lock"
# `sam build` runs this from a scratch copy of layers/stage1; the Makefile names the real folder in
# STAGE1_LAYER_SOURCE, so layers/client (a sibling, outside the copy) is found either way.
SOURCE = Path(os.environ.get("STAGE1_LAYER_SOURCE") or HERE).resolve()
# Packages copied into the layer: name -> source folder. Not `stage1_client` (the client installs alone).
PACKAGES = {"stage1": HERE / "stage1", "stage1_wire": SOURCE.parent / "client" / "stage1_wire"}

# The Lambda python3.12 runtime (every function's, template.yaml): CPython 3.12 on Amazon Linux 2023
# (glibc 2.34), x86_64. The byte code is compiled by an interpreter of this version (compile_tree).
RUNTIME = (3, 12)
PLATFORM = ["--platform", "manylinux_2_34_x86_64", "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux2014_x86_64", "--python-version", "3.12", "--implementation", "cp",
            "--only-binary=:all:"]

# Resolved as dependencies but never imported by a deployed function (checked by the packaged-import
# tests, which import every handler and serve a request from the layer alone).
EXCLUDED = {
    "faker": "litestar → polyfactory: OpenAPI example generation (create_examples=False here), 25 MB",
    "polyfactory": "litestar: OpenAPI examples and test factories only",
    "rich": "litestar: CLI only",
    "rich-click": "litestar: CLI only",
    "click": "litestar: CLI only",
    "pygments": "rich: CLI only, 10 MB",
    "markdown-it-py": "rich: CLI only",
    "mdurl": "markdown-it-py: CLI only",
}

# AWS API models kept in botocore/data (the other ~400 services are 28 MB). Every `client("...")`
# in the code base must be listed here: tests/deploy/test_layer.py checks it.
BOTO_SERVICES = {"s3", "lambda", "sts"}


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args], check=True)


def install_dependencies(site: Path) -> None:
    """The locked dependencies into `site` (a `python/` folder), then pruned and byte-compiled."""
    site.mkdir(parents=True, exist_ok=True)
    _pip("install", "--quiet", "--no-deps", "--require-hashes", "--no-compile", "--target", str(site),
         *PLATFORM, "-r", str(LOCK))
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: nothing runs them on Lambda
    data = site / "botocore" / "data"
    if data.is_dir():
        for entry in data.iterdir():
            if entry.is_dir() and entry.name not in BOTO_SERVICES:
                shutil.rmtree(entry)
    compile_tree(site)


def add_package(site: Path) -> None:
    """Copy the `stage1` and `stage1_wire` packages (sources only) into `site` and byte-compile them."""
    for name, source in PACKAGES.items():
        if not (source / "__init__.py").is_file():
            raise SystemExit(f"build_layer: {name} not found at {source} (set STAGE1_LAYER_SOURCE to layers/stage1)")
        target = site / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        compile_tree(target)


def compile_tree(path: Path) -> None:
    """Ship .pyc files: /opt is read-only on Lambda, so without them every cold start recompiles every
    module it imports. `unchecked-hash`: valid whatever mtimes the zip round trip leaves on the sources."""
    if sys.version_info[:2] != RUNTIME:
        print(f"build_layer: python {sys.version_info[0]}.{sys.version_info[1]} ≠ the runtime's 3.12; "
              "shipping no .pyc", file=sys.stderr)
        return
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    str(path)], check=True, stdout=subprocess.DEVNULL)


def build(artifacts: Path) -> None:
    site = artifacts / "python"
    install_dependencies(site)
    add_package(site)


def lock() -> None:
    """Resolve requirements.txt for the Lambda platform and write the pinned, hashed, trimmed lock."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        _pip("install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report), *PLATFORM,
             "-r", str(REQUIREMENTS))
        installs = json.loads(report.read_text())["install"]
    lines = [
        "# Generated by `python3.12 build_layer.py lock` (make layer-lock) from requirements.txt, for",
        "# CPython 3.12 manylinux_2_34/2_28/2014 x86_64 (the Lambda python3.12 runtime). Installed with --no-deps.",
        "# Left out (see EXCLUDED in build_layer.py): " + ", ".join(sorted(EXCLUDED)),
    ]
    for item in sorted(installs, key=lambda i: i["metadata"]["name"].lower()):
        name = item["metadata"]["name"].lower().replace("_", "-")
        if name in EXCLUDED:
            continue
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{name}=={item['metadata']['version']} --hash=sha256:{digest}")
    LOCK.write_text("\n".join(lines) + "\n")
    print(f"wrote {LOCK} ({len(lines) - 3} packages)")


# The requirements files derived from the root pyproject.toml (the one source of dependency bounds):
# file -> (extra, why). Only in a checkout: `sam build`'s scratch copy reads the files, never the pyproject.
REPO = HERE.parent.parent
DERIVED = {
    "layers/stage1/requirements.txt": ("layer", "the API functions' Lambda layer (make layer-lock pins it)"),
    "functions/importer/requirements.txt": ("importer", "the importer image, on top of the layer's file"),
}


def derived_requirements() -> dict[str, str]:
    """Each derived file's text, from pyproject.toml's [project.optional-dependencies]."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    out = {}
    for path, (extra, why) in DERIVED.items():
        head = [f"# Generated from pyproject.toml [project.optional-dependencies] {extra}: {why}.",
                "# Do not edit: change pyproject.toml, then `python3 layers/stage1/build_layer.py requirements`",
                "# (tests/unit/test_dependencies.py fails while this file disagrees)."]
        out[path] = "\n".join(head + list(extras[extra])) + "\n"
    return out


def requirements(check: bool) -> int:
    stale = []
    for path, text in derived_requirements().items():
        target = REPO / path
        if (target.read_text() if target.exists() else "") != text:
            stale.append(path)
            if not check:
                target.write_text(text)
    if check and stale:
        print(f"stale (run `python3 layers/stage1/build_layer.py requirements`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "build":
        build(Path(argv[1]).resolve())
    elif argv == ["lock"]:
        lock()
    elif argv[:1] == ["requirements"] and argv[1:] in ([], ["--check"]):
        return requirements(check=argv[1:] == ["--check"])
    elif len(argv) == 2 and argv[0] == "deps":  # the dependencies alone (the package report's cache)
        install_dependencies(Path(argv[1]).resolve())
    elif len(argv) == 2 and argv[0] == "package":  # the packages alone, on top of cached dependencies
        add_package(Path(argv[1]).resolve())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_NO_WARN_SCRIPT_LOCATION", "1")
    sys.exit(main(sys.argv[1:]))
