"""template.yaml is valid CloudFormation and transforms cleanly with the SAM translator."""

from pathlib import Path

from stage1_local.template import TEMPLATE, load_template


def test_cfn_lint_finds_no_errors():
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(Path(TEMPLATE), config=ManualArgs(regions=["us-east-1"]))
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(str(m) for m in errors)


def test_sam_translator_transforms_the_template(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    class _NoIAM(ManagedPolicyLoader):
        def load(self):  # the managed-policy lookup would call IAM; nothing here reaches AWS
            return {}

    template = load_template()
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):  # what `sam package` does: local folders → S3 objects
            if isinstance(props.get(key), str):
                props[key] = f"s3://stage1-artifacts/{props[key]}.zip"
        if props.get("PackageType") == "Image":
            props["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stage1:latest"
    try:
        out = transform(template, {}, _NoIAM(None))
    except InvalidDocumentException as exc:
        raise AssertionError("; ".join(str(e) for e in exc.causes)) from exc
    types = {r["Type"] for r in out["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::ApiGatewayV2::Api", "AWS::Lambda::LayerVersion"} <= types


def test_no_secret_defaults_in_the_template():
    params = load_template()["Parameters"]
    for name in ("PostgresDsn", "AdminSecret", "QuestDbPassword"):
        assert params[name].get("NoEcho") is True
        assert params[name].get("Default", "") == ""
