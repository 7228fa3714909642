"""One dependency source of truth: the root pyproject.toml. The layer's and the importer image's
requirements files are generated from its `layer`/`importer` extras, and every package has one bound
wherever it is listed (root dependencies, every extra, the client distribution's pyproject)."""

import importlib.util
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def _build_layer():
    spec = importlib.util.spec_from_file_location("build_layer_for_test", REPO / "layers" / "stage1" / "build_layer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lists() -> dict[str, list[str]]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((REPO / "layers" / "client" / "pyproject.toml").read_text())["project"]
    lists = {"dependencies": root["dependencies"], "client": client["dependencies"]}
    lists |= {f"[{k}]": v for k, v in root["optional-dependencies"].items()}
    lists |= {f"client[{k}]": v for k, v in client.get("optional-dependencies", {}).items()}
    return lists


def test_requirements_files_are_generated_from_pyproject():
    for path, text in _build_layer().derived_requirements().items():
        assert (REPO / path).read_text() == text, f"{path} is stale: python3 layers/stage1/build_layer.py requirements"


def test_every_package_has_one_bound_wherever_it_is_listed():
    # Before issue 12: questdb>=3,<7 in pyproject.toml but >=6,<7 in functions/importer/requirements.txt.
    seen: dict[str, tuple[str, str]] = {}
    for where, reqs in _lists().items():
        for line in reqs:
            req = Requirement(line)
            bound = f"{sorted(req.extras)}{req.specifier}"
            if req.name in seen:
                assert seen[req.name][0] == bound, f"{req.name}: {seen[req.name][1]} says {seen[req.name][0]}, " \
                                                   f"{where} says {bound}"
            seen[req.name] = (bound, where)


def test_what_the_layer_and_image_ship_is_what_the_dev_venv_tests():
    lists = _lists()
    dev = {Requirement(r).name for r in lists["dependencies"] + lists["[dev]"]}
    for extra in ("[layer]", "[importer]"):
        missing = {Requirement(r).name for r in lists[extra]} - dev - {"numpy"}  # numpy: via pandas/pyarrow
        assert not missing, f"{extra} ships {missing}, which the development install does not test"


def test_layer_lock_pins_satisfy_the_layer_bounds():
    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", (REPO / "layers/stage1/requirements.lock").read_text(), re.M))
    for line in _lists()["[layer]"]:
        req = Requirement(line)
        assert req.specifier.contains(pins[req.name]), f"lock pins {req.name}=={pins[req.name]} outside {req}"


def test_one_python_for_every_function():
    """The zip functions, the layer's wheels and byte code, the importer image and the sam wrapper name one
    Python (issue 15: the zip functions were 3.11 while the importer image was 3.12)."""
    import sys

    sys.path.insert(0, str(REPO / "local"))
    from stage1_local import sam

    build_layer = _build_layer()
    layer = build_layer.PLATFORM
    template = (REPO / "template.yaml").read_text()
    runtimes = set(re.findall(r"^\s+Runtime: (\S+)", template, re.M))
    bases = set(re.findall(r"^FROM public\.ecr\.aws/lambda/python:(3\.\d+)", (
        REPO / "functions/importer/Dockerfile").read_text(), re.M))
    layer_runtimes = set(re.findall(r"CompatibleRuntimes: \[([^\]]+)\]", template))
    assert runtimes == {"python3.12"}, runtimes
    assert layer_runtimes == {"python3.12"}, layer_runtimes
    assert bases == {"3.12"}, bases
    assert layer[layer.index("--python-version") + 1] == "3.12"
    assert build_layer.RUNTIME == (3, 12)
    assert sam.RUNTIME_PYTHON == "python3.12"
    assert "PYTHON ?= python3.12" in (REPO / "layers/stage1/Makefile").read_text()
