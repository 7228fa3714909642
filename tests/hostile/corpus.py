"""Load a hostile corpus file of this folder (format: the header of each file, e.g. sql.txt)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Case:
    line: int
    outcome: str  # "refuse" or "allow"
    reason: str | None
    text: str


def load(name: str) -> list[Case]:
    cases = []
    for number, raw in enumerate((HERE / name).read_text(encoding="ascii").split("\n"), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        outcome, reason, text = raw.split("\t", 2)
        assert outcome in ("refuse", "allow"), f"{name}:{number}: unknown outcome {outcome!r}"
        cases.append(Case(number, outcome, None if reason == "-" else reason,
                          codecs.decode(text, "unicode_escape")))
    return cases
