"""Container-image functions, checked without a Docker engine: the template block is complete, the
Dockerfile's requirements resolve to wheels for its Lambda base image, and the handler module it names
imports in a fresh process. Plus the shape every zip function needs once an image function exists."""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stage1_local.sam import CACHE
from stage1_local.template import REPO, functions, load_template

RESOURCES = load_template()["Resources"]
IMAGES = sorted(n for n, r in RESOURCES.items()
                if r.get("Type") == "AWS::Serverless::Function" and r["Properties"].get("PackageType") == "Image")
ZIPS = sorted(n for n, r in RESOURCES.items()
              if r.get("Type") == "AWS::Serverless::Function" and r["Properties"].get("PackageType") != "Image")
BASE = re.compile(r"^FROM\s+public\.ecr\.aws/lambda/python:(3\.\d+)\S*\s*$", re.M)
# glibc of the Lambda base images: 3.11 is Amazon Linux 2 (2.26), 3.12+ Amazon Linux 2023 (2.34).
MANYLINUX = {"3.11": ["manylinux2014", "manylinux_2_17"],
             "3.12": ["manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34"],
             "3.13": ["manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34"]}


def image(name: str) -> tuple[dict, Path, Path, str]:
    resource = RESOURCES[name]
    meta = resource.get("Metadata") or {}
    context = REPO / meta["DockerContext"]
    dockerfile = context / meta.get("Dockerfile", "Dockerfile")
    return resource, context, dockerfile, dockerfile.read_text()


@pytest.mark.parametrize("name", ZIPS)
def test_zip_function_names_its_runtime_and_layer(name):
    """Runtime and Layers cannot live in Globals next to an image function, so each zip function sets them."""
    props = RESOURCES[name]["Properties"]
    assert props.get("Runtime") == "python3.12"
    assert {"Ref": "SharedLayer"} in (props.get("Layers") or [])


@pytest.mark.parametrize("name", IMAGES)
def test_image_function_block_is_complete(name):
    resource, context, dockerfile, text = image(name)
    props = resource["Properties"]
    assert not {"Runtime", "Handler", "Layers", "CodeUri"} & set(props), "not allowed on an image function"
    glob = load_template().get("Globals", {}).get("Function", {})
    assert not {"Runtime", "Handler", "Layers"} & set(glob), "Globals would give these to the image function"
    assert dockerfile.is_file(), dockerfile
    assert resource["Metadata"].get("DockerTag"), "DockerTag names the image version in ECR"
    assert BASE.search(text), "base image must be the AWS Lambda Python image"
    for source in re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+\S+\s*$", text, re.M):
        assert (context / source).exists(), f"COPY {source}: not in the build context {context}"
    command = (props.get("ImageConfig") or {}).get("Command") or []
    assert command, "ImageConfig.Command names the handler (the local gateway reads it)"
    module = command[0].rpartition(".")[0].replace(".", "/")
    assert (context / f"{module}.py").is_file(), f"{command[0]}: no {module}.py in the build context"


@pytest.mark.parametrize("name", IMAGES)
def test_image_requirements_resolve_for_its_base(name, tmp_path):
    """`pip install --dry-run` of every requirements file the Dockerfile copies, for the base image's
    Python and glibc, wheels only (what the Dockerfile's pip does, minus the download)."""
    _, context, _, text = image(name)
    python = BASE.search(text).group(1)
    files = [context / s for s in re.findall(r"^COPY\s+(\S*requirements[^\s]*\.txt)\s", text, re.M)]
    assert files, "the Dockerfile copies no requirements file"
    arch = "x86_64" if RESOURCES[name]["Properties"].get("Architectures", ["x86_64"]) == ["x86_64"] else "aarch64"
    platforms = [arg for tag in MANYLINUX[python] for arg in ("--platform", f"{tag}_{arch}")]
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--report", str(report),
         "--only-binary=:all:", "--python-version", python, "--implementation", "cp", *platforms,
         *[arg for f in files for arg in ("-r", str(f))]],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"litestar", "msgspec", "psycopg"} <= names  # the shared layer's set came along


def image_python(version: str, requirement_files: list[Path]) -> Path:
    """A venv of the base image's Python (from pyenv, as on these machines) with what the Dockerfile
    installs, wheels only; cached by content. Without that Python, the project's venv stands in."""
    candidates = [str(p) for p in sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))]
    candidates += [p for p in [shutil.which(f"python{version}")] if p]
    working = [p for p in candidates if subprocess.run([p, "-c", "pass"], capture_output=True).returncode == 0]
    if not working:
        return Path(sys.executable)
    found = working[0]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in requirement_files)).hexdigest()[:16]
    venv = CACHE / f"image-venv-{version}-{digest}"
    python = venv / "bin" / "python"
    with open(CACHE / f"image-venv-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([found, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "--only-binary=:all:", *[a for f in requirement_files for a in ("-r", str(f))]],
                           check=True, timeout=900)
            (venv / ".complete").touch()
            for old in CACHE.glob(f"image-venv-{version}-*"):  # superseded requirements (500 MB each)
                if old != venv and old.is_dir() and time.time() - old.stat().st_mtime > 3600:
                    shutil.rmtree(old, ignore_errors=True)
    return python


@pytest.mark.parametrize("name", IMAGES)
def test_image_handler_imports_in_a_fresh_process(name, tmp_path):
    """The module CMD names, imported as the image lays it out (the build context's root and the shared
    package on sys.path), by the base image's Python with the image's requirements installed."""
    resource, context, _, text = image(name)
    python_version = BASE.search(text).group(1)
    files = [context / s for s in re.findall(r"^COPY\s+(\S*requirements[^\s]*\.txt)\s", text, re.M)]
    python = image_python(python_version, files)
    command = resource["Properties"]["ImageConfig"]["Command"][0]
    module, _, attr = command.rpartition(".")
    # What the Dockerfile copies next to the handler: stage1 and stage1_wire (each from its own folder).
    shipped = [str(context), str(REPO / "layers" / "stage1"), str(REPO / "layers" / "client")]
    code = (f"import sys, importlib; sys.path[:0] = {shipped!r}; "
            f"h = getattr(importlib.import_module({module!r}), {attr!r}); assert callable(h); "
            "assert 'stage1_client' not in sys.modules; print(sys.version_info[:2])")
    proc = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fn = functions()[name]  # the local gateway resolves the same file
    assert fn.handler == command
