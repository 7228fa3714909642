"""The layer's lock agrees with its requirements, leaves nothing out by accident, and keeps the AWS
models of every service the code calls."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stage1_local.template import REPO

LAYER = REPO / "layers" / "stage1"
spec = importlib.util.spec_from_file_location("build_layer", LAYER / "build_layer.py")
build_layer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_layer)

# The Lambda python3.12 runtime, for evaluating dependency markers.
LAMBDA_ENV = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.0",
              "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
              "implementation_name": "cpython", "platform_python_implementation": "CPython", "os_name": "posix"}


def locked() -> dict[str, str]:
    pins = {}
    for line in (LAYER / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, rest = line.partition("==")
            pins[canonicalize_name(name)] = rest.split()[0]
    return pins


def requirements() -> list[Requirement]:
    lines = (LAYER / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_every_requirement_is_locked_at_an_allowed_version():
    pins = locked()
    for req in requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not in requirements.lock: run `make layer-lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req} vs locked {pins[name]}"
        for extra in req.extras:  # psycopg[binary] → psycopg-binary
            assert canonicalize_name(f"{req.name}-{extra}") in pins or extra != "binary"


def test_lock_is_closed_except_for_the_documented_exclusions(packaged):
    """Every dependency of every locked package is locked too, or excluded on purpose (EXCLUDED says why)."""
    _, layers = packaged
    site = layers["SharedLayer"].site
    pins = locked()
    excluded = {canonicalize_name(n) for n in build_layer.EXCLUDED}
    assert not excluded & set(pins), "an excluded package is in the lock"
    missing, installed = {}, set()
    for metadata in site.glob("*.dist-info/METADATA"):
        text = metadata.read_text(errors="replace")
        owner = re.search(r"^Name: (.+)$", text, re.M).group(1).strip()
        installed.add(canonicalize_name(owner))
        for raw in re.findall(r"^Requires-Dist: (.+)$", text, re.M):
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({**LAMBDA_ENV, "extra": ""}):
                continue
            name = canonicalize_name(req.name)
            if name not in pins and name not in excluded:
                missing.setdefault(owner, []).append(str(req))
    assert not missing, f"dependencies neither locked nor excluded (run `make layer-lock`): {missing}"
    assert installed == set(pins), "the layer's installed distributions differ from the lock"


_CLIENT = re.compile(r"""\.client\(\s*["']([a-z0-9-]+)["']""")


def test_botocore_keeps_the_model_of_every_service_the_code_calls():
    used = set()
    for root in (REPO / "layers", REPO / "functions"):
        for path in root.rglob("*.py"):
            used |= set(_CLIENT.findall(path.read_text(errors="replace")))
    assert used <= build_layer.BOTO_SERVICES, (
        f"add {sorted(used - build_layer.BOTO_SERVICES)} to BOTO_SERVICES in layers/stage1/build_layer.py"
    )


def test_layer_ships_byte_code_and_the_package(packaged):
    _, layers = packaged
    site: Path = layers["SharedLayer"].site
    for package in ("stage1", "stage1_wire"):  # the server and the wire schemas it shares with the client
        assert (site / package / "__init__.py").is_file(), f"{package} is not in the layer"
        assert list((site / package / "__pycache__").glob("__init__.cpython-312.pyc"))
    # The client installs on its own (layers/client); no function runs it.
    assert not (site / "stage1_client").exists(), "the layer ships the client"
    assert not list((site / "stage1").glob("client/*.py")), "the layer ships the old in-package client"
    wire = build_layer.PACKAGES["stage1_wire"]
    assert {p.name for p in (site / "stage1_wire").glob("*.py")} == {p.name for p in wire.glob("*.py")}
    assert not (site / "bin").exists()
    assert {d.name for d in (site / "botocore" / "data").iterdir() if d.is_dir()} == build_layer.BOTO_SERVICES
