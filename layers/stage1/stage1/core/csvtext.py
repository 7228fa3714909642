"""CSV text the services hand out: formula-like cells neutralised (CSV injection), rows written in
chunks, and `CsvBody`, the download a service returns for its handler to stream."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

# CSV injection (OWASP): a spreadsheet runs a cell that starts with = + - @ tab or CR as a formula,
# so such a text cell gets a leading single quote, unless it is a number (`-1.5`, `+3`, `-1.0E-5`).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUM = rb"[+-]?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][+-]?\d{1,4})?|[+-]?(?:Infinity|NaN)"
_NUMBER = re.compile(_NUM.decode())
# A cell start (after `,` or LF) whose text starts like a formula and is not a number; quoted or not.
_ANY_CELL = re.compile(rb'[,\n](?:"(?=[=+\-@\t\r])(?!(?:' + _NUM + rb')")|(?=[=+\-@\t])(?!(?:' + _NUM
                       + rb')(?:[,\r\n]|$)))')
_QUOTED_CELL = re.compile(rb'[,\n]"(?=[=+\-@\t\r])(?!(?:' + _NUM + rb')")')
# Cheap literal-prefixed pre-checks (~10x faster than the patterns above) for QuestDB's CSV.
_QUOTED_QUICK = (re.compile(rb',"[=+\-@\t\r]'), re.compile(rb'\n"[=+\-@\t\r]'))
_LOOKAHEAD = 256  # bytes kept back between chunks: more than the longest number above


def csv_cell(value: Any) -> Any:
    """A value for a CSV writer: text that a spreadsheet would run as a formula gets a `'` prefix."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_csv(chunks: Iterator[bytes], *, unquoted_text: bool = True) -> Iterator[bytes]:
    """RFC 4180 CSV bytes with every formula-like text cell prefixed by `'` (see `csv_cell`), in
    the same chunks (less a small look-ahead carried to the next one). Quote parity is tracked across
    chunks, so a `,=` inside a quoted field is left alone. `unquoted_text=False` is for QuestDB's
    `/exp`, which quotes every string value (an unquoted cell is a number, boolean, null or CHAR),
    so only quoted cells are examined, behind a fast pre-check. Closing this closes `chunks`."""
    pattern = _ANY_CELL if unquoted_text else _QUOTED_CELL
    context, pending, odd = b"\n", b"", False  # a virtual line end before the first cell
    try:
        for chunk in chunks:
            data = context + pending + chunk
            cut = len(data) - _LOOKAHEAD
            if cut <= len(context):
                pending = data[len(context):]
                continue
            out, odd = _rewrite(data, len(context), cut, odd, pattern, quick=not unquoted_text)
            yield out
            context, pending = data[cut - 1:cut], data[cut:]
        data = context + pending
        if len(data) > len(context):
            out, odd = _rewrite(data, len(context), len(data), odd, pattern, quick=not unquoted_text)
            yield out
    finally:
        release_chunks(chunks)


def _rewrite(data: bytes, start: int, end: int, odd: bool, pattern: re.Pattern[bytes], *,
             quick: bool) -> tuple[bytes, bool]:
    """data[start:end] with the prefixes inserted, and the quote parity after it."""
    if quick and not any(q.search(data, start - 1, end + 1) for q in _QUOTED_QUICK):
        return data[start:end], odd ^ bool(data.count(b'"', start, end) & 1)
    parts, last, counted = [], start, start
    for found in pattern.finditer(data, start - 1):
        at = found.start() + 1  # the cell's first byte (a quote, or the text)
        if at >= end:
            break
        odd ^= bool(data.count(b'"', counted, at) & 1)
        counted = at
        if odd:  # inside a quoted field: not a cell start
            continue
        insert = at + 1 if data[at] == 0x22 else at
        parts += [data[last:insert], b"'"]
        last = insert
    odd ^= bool(data.count(b'"', counted, end) & 1)
    parts.append(data[last:end])
    return b"".join(parts), odd


def release_chunks(chunks: Iterator[bytes]) -> None:
    """Release CSV chunks: a generator that never ran has not entered its own `with` (which holds
    the open QuestDB or Postgres read), so it is advanced once before it is closed."""
    if inspect.isgenerator(chunks):
        if inspect.getgeneratorstate(chunks) == inspect.GEN_CREATED:
            next(chunks, None)
        chunks.close()


def csv_lines(header: list[str], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    """CSV text (RFC 4180, `\\n` line ends, nulls empty, formula-like text neutralised) in chunks
    of about 64 KiB."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else csv_cell(v) for v in row])
        if buf.tell() >= 1 << 16:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


class CsvBody:
    """A CSV download a service hands to its handler: a file name and the chunks to stream."""

    __slots__ = ("chunks", "filename", "headers")

    def __init__(self, filename: str, chunks: Iterator[bytes], headers: dict[str, str] | None = None) -> None:
        self.filename = filename
        self.chunks = chunks
        self.headers = headers or {}  # extra response headers (a downsampled read says so here)
