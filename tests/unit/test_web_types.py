"""The web client's TypeScript types (functions/web/ui/src/api/schema.d.ts) are generated from
docs/openapi.json by openapi-typescript (`make openapi` writes both); this fails when they are stale."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "functions" / "web" / "ui"
GENERATOR = UI / "node_modules" / ".bin" / "openapi-typescript"


def test_committed_types_match_the_spec(tmp_path: Path) -> None:
    if shutil.which("node") is None or not GENERATOR.exists():
        pytest.skip("the web client's npm packages are not installed (make web-deps)")
    out = tmp_path / "schema.d.ts"
    subprocess.run([str(GENERATOR), str(REPO / "docs" / "openapi.json"), "-o", str(out)],
                   cwd=UI, check=True, capture_output=True, timeout=120)
    committed = (UI / "src" / "api" / "schema.d.ts").read_text()
    assert out.read_text() == committed, "functions/web/ui/src/api/schema.d.ts is stale: run `make openapi`"
