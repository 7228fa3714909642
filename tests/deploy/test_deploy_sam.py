"""`sam validate --lint` and `sam build` (aws-sam-cli from PyPI, in its own cached venv; no Docker) pass
for the real template: every zip function and every layer is built; image functions are excluded."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from stage1_local import sam
from stage1_local.template import functions, load_template


def test_sam_validate_lint():
    proc = sam.validate(capture=True)
    assert "is a valid SAM Template" in proc.stdout + proc.stderr


def test_sam_build_builds_every_zip_function_and_layer(tmp_path, packaged):
    build_dir = tmp_path / "build"
    proc = sam.build(build_dir, capture=True)
    assert "Build Succeeded" in proc.stdout + proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]
    zip_functions = {n for n, f in functions().items() if f.package_type != "Image"}
    expected = zip_functions | {"SharedLayer"}
    assert expected <= set(sam.buildable())
    for name in sam.buildable():
        assert (build_dir / name).is_dir(), f"sam build made nothing for {name}"
    for name in zip_functions:
        fn = functions()[name]
        module = fn.handler.rpartition(".")[0].replace(".", "/")
        assert (build_dir / name / f"{module}.py").is_file(), f"{name}: handler module not in its artifact"
    built = yaml.safe_load((build_dir / "template.yaml").read_text().replace("!", ""))
    assert set(sam.image_functions()) <= set(built["Resources"])

    # What `sam build` put in the layer is what the package report measured and the tests imported.
    _, layers = packaged
    ours = {p.relative_to(layers["SharedLayer"].site) for p in layers["SharedLayer"].site.rglob("*") if p.is_file()}
    site = build_dir / "SharedLayer" / "python"
    theirs = {p.relative_to(site) for p in site.rglob("*") if p.is_file()}
    assert theirs == ours, (sorted(theirs - ours)[:10], sorted(ours - theirs)[:10])


# The SAM transform of the real template (the cached aws-sam-cli's samtranslator, as `sam deploy` and
# CloudFormation run it), printing the HttpApi authorizer's OpenAPI extension.
_TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    props = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        if key in props:
            props[key] = "s3://bucket/key.zip"
    if props.get("PackageType") == "Image":
        props["ImageUri"] = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1"
class NoManagedPolicies:
    def load(self):
        return {}
out = transform(template, {}, NoManagedPolicies())
api = next(r for r in out["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api")
schemes = api["Properties"]["Body"]["components"]["securitySchemes"]
print(json.dumps({name: s["x-amazon-apigateway-authorizer"] for name, s in schemes.items()}))
"""


def test_the_deployed_authorizer_has_no_identity_source_and_no_cache():
    """API Gateway (HTTP API) calls a Lambda authorizer only when every identity source it lists is in
    the request, and caches only by them: the transformed template must list none (so X-Stage1-Token and
    Authorization: Bearer both reach the authorizer) and its TTL parameter must be 0 (docs/auth.md)."""
    python = sam.sam_executable().parent / "python"
    proc = subprocess.run([str(python), "-c", _TRANSFORM, str(sam.TEMPLATE)], capture_output=True, text=True,
                          env={**os.environ, "AWS_DEFAULT_REGION": sam.REGION}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (authorizer,) = json.loads(proc.stdout).values()
    assert authorizer["type"] == "request" and authorizer["enableSimpleResponses"] is True
    assert authorizer.get("identitySource") in (None, [])
    assert authorizer["authorizerResultTtlInSeconds"] == {"Ref": "AuthorizerCacheTtl"}
    ttl = load_template()["Parameters"]["AuthorizerCacheTtl"]
    assert ttl["Default"] == ttl["MaxValue"] == 0
