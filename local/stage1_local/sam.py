"""AWS SAM CLI in its own virtualenv (outside the repo), and the checks CI runs with it.

    python -m stage1_local.sam check              sam validate --lint, then sam build of every zip function and layer
    python -m stage1_local.sam validate           sam validate --lint
    python -m stage1_local.sam build [--build-dir D]   sam build, skipping PackageType: Image functions
    python -m stage1_local.sam deploy ENV [-- ARGS]   sam deploy with infra/samconfig.toml's ENV (dev, prod) plus
                                                  the secret parameters from STAGE1_DEPLOY_* variables
    python -m stage1_local.sam run -- ARGS...     any sam command (e.g. `run -- deploy --guided`)
    python -m stage1_local.sam path               print the sam executable (installing it if needed)

aws-sam-cli pins many libraries, so it never goes into the project's .venv: it is installed once into
`$STAGE1_CACHE_DIR/sam-venv-<version>` (default ~/.cache/stage1) and reused. Nothing here talks to AWS.

Image functions (the importer/exporter image) need a Docker engine to build, which these machines do
not have: `build` passes `--exclude <LogicalId>` for each of them, so one `sam build` still builds
every zip function and every layer of the real template (where Docker exists, plain `sam build`
builds the images too).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from stage1_local.template import REPO, TEMPLATE, load_template

SAM_VERSION = "1.170.0"
# The functions' runtime (template.yaml's `Runtime: python3.12`): `sam build` without a container needs
# this interpreter on PATH, and the layer's byte code is compiled by it.
RUNTIME_PYTHON = "python3.12"
REGION = "us-east-1"  # validate/build need a region; no call reaches it
CACHE = Path(os.environ.get("STAGE1_CACHE_DIR") or Path.home() / ".cache" / "stage1").resolve()
SAM_VENV = CACHE / f"sam-venv-{SAM_VERSION}"


def _runs(python: str) -> bool:
    """A `python3.12` on PATH may be a pyenv shim that refuses to run (that version is not selected)."""
    try:
        return subprocess.run([python, "-c", ""], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def runtime_python(path: str | None = None) -> Path | None:
    """A runnable interpreter of the functions' runtime: PATH's own (`path`, default this process's), else
    a pyenv build ($PYENV_ROOT or ~/.pyenv, newest 3.12.x first), as the CI machines have."""
    found = shutil.which(RUNTIME_PYTHON, path=path if path is not None else os.environ.get("PATH"))
    if found and _runs(found):
        return Path(found)
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    version = RUNTIME_PYTHON.removeprefix("python")
    builds = sorted(root.glob(f"versions/{version}.*/bin/{RUNTIME_PYTHON}"),
                    key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")], reverse=True)
    return next((b for b in builds if _runs(str(b))), None)


def sam_executable() -> Path:
    """The cached `sam`, installed on first use (a lock keeps parallel callers from racing)."""
    exe = SAM_VENV / "bin" / "sam"
    marker = SAM_VENV / ".installed"
    if marker.exists():
        return exe
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"sam-venv-{SAM_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            shutil.rmtree(SAM_VENV, ignore_errors=True)  # a half-made venv from an interrupted run
            python = sys.executable  # any 3.11+; a `python3.12` on PATH may be a shim that does not run
            print(f"sam: installing aws-sam-cli=={SAM_VERSION} into {SAM_VENV}", file=sys.stderr)
            subprocess.run([python, "-m", "venv", str(SAM_VENV)], check=True)
            pip = [str(SAM_VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
            subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
            subprocess.run([*pip, "install", f"aws-sam-cli=={SAM_VERSION}"], check=True)
            marker.write_text(SAM_VERSION + "\n")
    return exe


def sam_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", REGION))
    # SAM's python builder and the layer's Makefile run `python3.12` from PATH: when PATH has none that
    # runs (the project's venv is 3.11; a pyenv shim may refuse), the pyenv build's folder goes first.
    runtime = runtime_python(env.get("PATH", ""))
    if runtime is None:
        raise SystemExit(f"sam: no runnable {RUNTIME_PYTHON} on PATH or in ~/.pyenv/versions (the functions' runtime)")
    if shutil.which(RUNTIME_PYTHON, path=env.get("PATH", "")) != str(runtime):
        env["PATH"] = f"{runtime.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_sam(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(sam_executable()), *args], cwd=REPO, env=sam_env(), check=check, text=True,
                          capture_output=capture)


def image_functions(template: Path = TEMPLATE) -> list[str]:
    resources = load_template(template).get("Resources") or {}
    return sorted(name for name, r in resources.items()
                  if r.get("Type") == "AWS::Serverless::Function"
                  and (r.get("Properties") or {}).get("PackageType") == "Image")


def buildable(template: Path = TEMPLATE) -> list[str]:
    """Logical ids `sam build` builds here: zip functions and layers."""
    resources = load_template(template).get("Resources") or {}
    images = set(image_functions(template))
    return sorted(name for name, r in resources.items()
                  if r.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")
                  and name not in images)


def validate(template: Path = TEMPLATE, *, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return run_sam("validate", "--lint", "--template-file", str(template), "--region", REGION, capture=capture)


def build(build_dir: Path, template: Path = TEMPLATE, *, capture: bool = False) -> subprocess.CompletedProcess[str]:
    cache_dir = CACHE / "sam-build-cache"
    args = ["build", "--template-file", str(template), "--build-dir", str(build_dir),
            "--cache-dir", str(cache_dir), "--region", REGION]
    for name in image_functions(template):
        args += ["--exclude", name]
    return run_sam(*args, capture=capture)


SAMCONFIG = REPO / "infra" / "samconfig.toml"


def secret_env_name(parameter: str) -> str:
    """`PostgresDsn` → `STAGE1_DEPLOY_POSTGRES_DSN`: where `deploy` reads a NoEcho parameter's value."""
    return "STAGE1_DEPLOY_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", parameter).upper()


def _quoted(value: str) -> str:
    """SAM splits overrides on spaces and reads `Key="value"`, turning `\\"` back into `"` (and leaving other
    backslashes alone): quote every secret, so `=`, `&` or spaces in a DSN cannot shift the split."""
    if value.endswith("\\"):
        raise SystemExit("a secret parameter value may not end with a backslash")
    return '"' + value.replace('"', '\\"') + '"'


def deploy_command(env: str, environ: Mapping[str, str], extra: list[str] | None = None) -> list[str]:
    """`sam deploy` arguments for an environment of infra/samconfig.toml. A command-line
    --parameter-overrides replaces the file's, so the file's overrides are repeated with the secrets
    (the template's NoEcho parameters) appended from the environment; a secret without a default that
    is not set is an error here rather than a failed change set."""
    config = tomllib.loads(SAMCONFIG.read_text())
    if env not in config or "deploy" not in config[env]:
        raise SystemExit(f"no [{env}.deploy.parameters] in {SAMCONFIG}")
    overrides = str(config[env]["deploy"]["parameters"].get("parameter_overrides", ""))
    params = load_template().get("Parameters") or {}
    missing = []
    for name, spec in params.items():
        if not spec.get("NoEcho"):
            continue
        value = environ.get(secret_env_name(name))
        if value is None:
            if "Default" not in spec:
                missing.append(secret_env_name(name))
            continue
        overrides += f" {name}={_quoted(value)}"
    if missing:
        raise SystemExit("set the secret parameters in the environment first: " + ", ".join(missing))
    return ["deploy", "--config-file", str(SAMCONFIG), "--config-env", env,
            "--parameter-overrides", overrides.strip(), *(extra or [])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stage1_local.sam", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("path")
    sub.add_parser("validate")
    for name in ("build", "check"):
        p = sub.add_parser(name)
        p.add_argument("--build-dir", type=Path, default=REPO / ".aws-sam" / "build")
    deploy = sub.add_parser("deploy")
    deploy.add_argument("env", help="an environment of infra/samconfig.toml (dev, prod)")
    deploy.add_argument("args", nargs=argparse.REMAINDER)
    run = sub.add_parser("run")
    run.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)

    if ns.command == "path":
        print(sam_executable())
    elif ns.command == "validate":
        validate()
    elif ns.command in ("build", "check"):
        if ns.command == "check":
            validate()
        skipped = image_functions()
        if skipped:
            print(f"sam: not built here (PackageType: Image, needs Docker): {', '.join(skipped)}", file=sys.stderr)
        build(ns.build_dir)
        missing = [name for name in buildable() if not (ns.build_dir / name).is_dir()]
        if missing:
            print(f"sam: no build output for {', '.join(missing)}", file=sys.stderr)
            return 1
        print(f"sam: built {', '.join(buildable())} into {ns.build_dir}")
    elif ns.command == "deploy":
        extra = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
        return run_sam(*deploy_command(ns.env, os.environ, extra), check=False).returncode
    elif ns.command == "run":
        args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
        return run_sam(*args, check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
