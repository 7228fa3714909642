"""Read `template.yaml` the way SAM does for what the local gateway needs: the functions, their
code (CodeUri + Handler) and their HttpApi routes."""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    """`!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` → `{"Fn::Sub": s}`."""
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    authorizer: bool = True
    pattern: re.Pattern[str] = field(compare=False, default=re.compile(""))


@dataclass
class Function:
    name: str
    code_uri: Path
    handler: str
    package_type: str = "Zip"
    routes: list[Route] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def path_pattern(path: str) -> re.Pattern[str]:
    """HttpApi route path → regex: `{id}` is one segment, `{proxy+}` the rest of the path."""
    out = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            out += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            out += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            out += re.escape(part)
    return re.compile(f"^{out}$")


@cache
def functions(path: Path = TEMPLATE) -> dict[str, Function]:
    template = load_template(path)
    out: dict[str, Function] = {}
    for name, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        meta = resource.get("Metadata") or {}
        code_uri = props.get("CodeUri") or meta.get("DockerContext")
        handler = props.get("Handler") or _image_handler(props, meta)
        fn = Function(name, REPO / str(code_uri), str(handler), props.get("PackageType", "Zip"))
        for event_name, event in (props.get("Events") or {}).items():
            fn.events[event_name] = event
            if event.get("Type") == "HttpApi":
                ep = event.get("Properties") or {}
                auth = (ep.get("Auth") or {}).get("Authorizer") != "NONE"
                method = str(ep["Method"]).upper()
                fn.routes.append(Route(method, ep["Path"], name, auth, path_pattern(ep["Path"])))
        out[name] = fn
    return out


def _image_handler(props: dict[str, Any], meta: dict[str, Any]) -> str:
    """For `PackageType: Image` the handler is the image's CMD (ImageConfig.Command or DockerCMD)."""
    command = (props.get("ImageConfig") or {}).get("Command") or meta.get("DockerCMD") or [""]
    return str(command[0])


def load_handler(fn: Function) -> Any:
    """Import `<CodeUri>/<module>.py` and return its handler attribute, as the Lambda runtime
    would (each function is its own module namespace, named after the function)."""
    module_path, _, attr = fn.handler.rpartition(".")
    file = fn.code_uri / (module_path.replace(".", "/") + ".py")
    name = f"stage1_fn_{fn.name}"
    with _LOADING:  # concurrent first invocations (a chunked upload's events) must not see a half-run module
        return _load(fn, file, name, attr)


_LOADING = threading.RLock()


def _load(fn: Function, file: Path, name: str, attr: str) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # Litestar resolves type hints through sys.modules
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return getattr(sys.modules[name], attr)


def load_app(fn: Function) -> Any:
    """The ASGI app behind a Mangum handler (`handler.app`)."""
    return load_handler(fn).app


def routes() -> list[Route]:
    return [route for fn in functions().values() for route in fn.routes]
