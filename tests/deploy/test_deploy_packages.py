"""Every zip function, packaged as Lambda receives it (code + layer built for python3.12 manylinux),
stays within its size budget, imports and serves its first request without the project's venv."""

from __future__ import annotations

import json
import subprocess

import pytest

from stage1_local.lambda_events import event_for
from stage1_local.package_report import API_BUDGET, LAMBDA_UNZIPPED_LIMIT, MB, render
from stage1_local.sam import RUNTIME_PYTHON, runtime_python
from stage1_local.template import functions

ZIP = sorted(name for name, fn in functions().items() if fn.package_type != "Image")

# Third-party modules that code reachable from a handler imports lazily although the API layer does
# not ship them, each with the reason no deployed zip function runs that code. Anything else reachable
# and missing fails test_no_unpackaged_imports: package it, or keep it out of the API functions' path.
ALLOWED_LAZY = {
    ("questdb", "stage1/core/questdb.py"): "ilp_sender(): the native ILP client, for the importer image only "
    "(API functions write through stage1.core.ilp over QuestDB's /write)",
}

DRIVER = r"""
import importlib, json, sys
cfg = json.loads(sys.argv[1])
sys.path[:0] = cfg["path"]
module, _, attr = cfg["handler"].rpartition(".")
handler = getattr(importlib.import_module(module), attr)
out = {"callable": callable(handler)}
if cfg["event"] is not None:
    response = handler(cfg["event"], None)
    out.update(status=response["statusCode"], body=response.get("body", "")[:500])
out["foreign"] = sorted({m.split(".")[0] for m in sys.modules.values()
                         if getattr(m, "__file__", None) and not any(m.__file__.startswith(p) for p in cfg["allowed"])})
out["modules"] = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps(out))
"""


@pytest.mark.parametrize("name", ZIP)
def test_within_budget(packaged, name):
    packages, layers = packaged
    p = packages[name]
    assert p.total <= LAMBDA_UNZIPPED_LIMIT
    assert p.total <= API_BUDGET, (
        f"{name} is {p.total / MB:.1f} MB unzipped, over the {API_BUDGET // MB} MB budget:\n"
        + render(list(packages.values()), layers)
    )


@pytest.mark.parametrize("name", ZIP)
def test_packaged_handler_imports_and_serves_alone(packaged, name, tmp_path):
    """`python -I -S`: no venv, no site-packages; only the function's code and its layers, as on Lambda.
    API functions serve their cold-start event (tests/events/cold_start): any answer but a 500 shows the
    package holds what the request needs (a 503 just means the local stack is not running)."""
    packages, _ = packaged
    p = packages[name]
    fn = functions()[name]
    python = runtime_python()  # the runtime's interpreter: the layer's wheels and byte code are for it
    assert python is not None, f"no runnable {RUNTIME_PYTHON}"
    stdlib = subprocess.run([str(python), "-I", "-S", "-c", "import sys; print(sys.base_prefix)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    cfg = {"path": p.sys_path, "handler": fn.handler, "event": event_for(fn) if fn.routes else None,
           "allowed": [*p.sys_path, stdlib]}
    proc = subprocess.run([str(python), "-I", "-S", "-B", "-c", DRIVER, json.dumps(cfg)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["callable"]
    assert out["foreign"] == [], f"imported from outside the package: {out['foreign']}"
    assert "stage1_client" not in out["modules"], "a handler imports the client"
    if fn.routes:  # an API function answers with the wire Structs, from the layer
        assert "stage1_wire" in out["modules"], "the handler's schemas do not come from stage1_wire"
    if fn.routes:
        assert out["status"] != 500 and out["status"] != 404, out


@pytest.mark.parametrize("name", ZIP)
def test_no_unpackaged_imports(packaged, name):
    packages, _ = packaged
    unexpected = []
    for item in packages[name].unpackaged:  # "questdb (stage1/x.py:12 in a function; ...)"
        top, _, places = item.partition(" ")
        for place in places.strip("()").split("; "):
            if (top, place.split(":")[0]) not in ALLOWED_LAZY:
                unexpected.append(f"{top} at {place}")
    assert not unexpected, f"{name} can reach imports its Lambda package lacks: {unexpected}"
