"""infra/samconfig.toml and the deploy helper keep secrets out of files and hand them to SAM intact;
every function's IAM is least privilege as declared in template.yaml."""

from __future__ import annotations

import subprocess
import tomllib

import pytest

from stage1_local import sam
from stage1_local.template import load_template

TEMPLATE = load_template()
PARAMS = TEMPLATE["Parameters"]
SECRETS = {name for name, spec in PARAMS.items() if spec.get("NoEcho")}
CONFIG = tomllib.loads(sam.SAMCONFIG.read_text())


def overrides(env: str) -> dict[str, str]:
    raw = CONFIG[env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in raw.split())


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_samconfig_environment_is_complete_and_holds_no_secret(env):
    deploy = CONFIG[env]["deploy"]["parameters"]
    assert deploy["stack_name"] == f"stage1-{env}"
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    given = overrides(env)
    assert set(given) <= set(PARAMS), f"unknown parameters: {set(given) - set(PARAMS)}"
    assert not set(given) & SECRETS, "a NoEcho parameter is in samconfig.toml"
    needed = {n for n, spec in PARAMS.items() if "Default" not in spec and n not in SECRETS}
    assert needed <= set(given), f"{env} lacks {needed - set(given)}"
    assert given["Stage"] == env
    assert CONFIG[env]["global"]["parameters"]["region"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_samconfig_values_meet_the_template_constraints(env):
    """CloudFormation refuses a value outside MinValue/MaxValue/AllowedValues at deploy time; check it here
    (AuthorizerCacheTtl is held at 0 so both token headers work: an old `=300` override must go)."""
    for name, value in overrides(env).items():
        spec = PARAMS[name]
        if spec.get("Type") == "Number":
            number = float(value)
            assert spec.get("MinValue", number) <= number <= spec.get("MaxValue", number), (env, name, value)
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (env, name, value)


def test_deploy_command_appends_secrets_from_the_environment():
    environ = {sam.secret_env_name(n): f"value of {n}=x&y" for n in SECRETS}
    cmd = sam.deploy_command("prod", environ, ["--no-confirm-changeset"])
    assert cmd[:5] == ["deploy", "--config-file", str(sam.SAMCONFIG), "--config-env", "prod"]
    assert cmd[-1] == "--no-confirm-changeset"
    text = cmd[cmd.index("--parameter-overrides") + 1]
    assert "Stage=prod" in text
    for name in SECRETS:
        assert f'{name}="value of {name}=x&y"' in text


def test_deploy_command_refuses_to_run_without_required_secrets():
    with pytest.raises(SystemExit, match="STAGE1_DEPLOY_POSTGRES_DSN"):
        sam.deploy_command("dev", {})


def test_sam_reads_the_quoted_secrets_back_intact():
    """SAM's own parser of --parameter-overrides (from the cached aws-sam-cli) gets the exact values."""
    tricky = 'postgresql://u:p%40ss@db.example:5432/stage1?sslmode=require&application_name=a b"c'
    environ = {sam.secret_env_name(n): tricky for n in SECRETS}
    text = sam.deploy_command("dev", environ)[-1]
    python = sam.sam_executable().parent / "python"
    code = ("import sys, json; from samcli.cli.types import CfnParameterOverridesType as T; "
            "print(json.dumps(T().convert((sys.argv[1],), None, None)))")
    import json

    parsed = json.loads(subprocess.run([str(python), "-c", code, text], capture_output=True, text=True,
                                       check=True).stdout)
    for name in SECRETS:
        assert parsed[name] == tricky
    assert parsed["Stage"] == "dev"


def test_sam_reads_samconfig():
    for env in ("dev", "prod"):
        proc = sam.run_sam("validate", "--config-file", str(sam.SAMCONFIG), "--config-env", env, capture=True)
        assert "is a valid SAM Template" in proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------------ IAM
FUNCTIONS = {n: r for n, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
# SAM policy templates that grant one narrow thing on one named resource.
NARROW_TEMPLATES = {"LambdaInvokePolicy", "S3ReadPolicy", "SQSSendMessagePolicy", "SQSPollerPolicy"}


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_iam_is_least_privilege(name):
    props = FUNCTIONS[name]["Properties"]
    assert "Role" not in props, "functions get SAM-generated roles from their declared Policies"
    for policy in _as_list(props.get("Policies") or []):
        assert isinstance(policy, dict), f"managed policy {policy!r}: declare statements instead"
        if "Statement" not in policy:
            (template,) = policy
            assert template in NARROW_TEMPLATES, f"policy template {template} is too broad"
            continue
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"wildcard action {action}"
            for resource in _as_list(statement["Resource"]):
                assert resource != "*", "statement on every resource"


def test_network_template_is_valid_cloudformation():
    from cfnlint.api import ManualArgs, lint_file

    from stage1_local.template import REPO

    matches = lint_file(REPO / "infra" / "network.yaml", config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert not matches, "\n".join(str(m) for m in matches)
