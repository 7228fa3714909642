"""`sam validate --lint` and `sam build` (aws-sam-cli from PyPI, in its own cached venv; no Docker) pass
for the real template: every zip function and every layer is built; image functions are excluded."""

from __future__ import annotations

import yaml

from stage1_local import sam
from stage1_local.template import functions


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
