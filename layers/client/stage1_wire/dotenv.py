"""The one `.env` reader: `KEY=VALUE` lines, as the local stack writes `.state/stage1.env`.

Standard library only, so the server's settings (`stage1.core.settings`) and the client's
(`stage1_client.config`) share it. `local/stack.py` runs before any venv exists and cannot import
it; it only writes plain `KEY=VALUE` lines and reads them back with the same rules, which
tests/unit/test_dotenv.py checks by a round trip through both.

Rules: blank lines and `#` comments are skipped, an `export ` prefix is dropped, a value's
surrounding whitespace and quotes are stripped; no interpolation, no escapes, no multi-line values.
"""

from __future__ import annotations

from pathlib import Path


def parse_dotenv(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def read_dotenv(path: str | Path) -> dict[str, str]:
    """The file's values; a missing or unreadable file is empty (the environment alone applies)."""
    try:
        return parse_dotenv(Path(path).read_text())
    except (OSError, UnicodeDecodeError):
        return {}
