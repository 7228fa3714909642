"""Deploy checks: build what `sam build` builds, for the Lambda platform, and test it as Lambda runs it.
They need PyPI (the layer's wheels, aws-sam-cli) but not the local stack; builds are cached under
~/.cache/stage1, so only the first run downloads."""

from __future__ import annotations

import pytest

from stage1_local import package_report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/deploy/" in str(item.fspath):
            item.add_marker(pytest.mark.deploy)


@pytest.fixture(scope="session")
def packaged() -> tuple[dict[str, package_report.Package], dict[str, package_report.Layer]]:
    """Every function of template.yaml packaged as Lambda receives it (package_report)."""
    packages, layers = package_report.report()
    return {p.function: p for p in packages}, layers
