"""CSV injection (OWASP): formula-like text cells are prefixed with `'`, numbers are left alone,
whatever the chunking of the stream (stage1.core.csvtext.neutralise_csv, csv_cell, csv_lines)."""

import csv
import io

import pytest

from stage1.core.csvtext import csv_cell, csv_lines, neutralise_csv

DANGEROUS = ['=HYPERLINK("http://x")', "=1+2", "+x", "-x", "@SUM(A1)", "\tx", "\rx", "-", "=", "-1=2", "+1+1"]
NUMBERS = ["-1.5", "+3", "-1.0E-5", "-0.0", "1e300", "-Infinity", "NaN", "-9223372036854775807", ".5", "-.5"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_formula_cells_get_a_quote(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", [*NUMBERS, "x", "a=b", "", " =x", -1.5, 3, None])
def test_numbers_and_plain_text_are_unchanged(value):
    assert csv_cell(value) == value


def split_every(data: bytes, n: int) -> list[bytes]:
    return [data[i:i + n] for i in range(0, len(data), n)]


def through(data: bytes, n: int, *, unquoted_text: bool = True) -> bytes:
    return b"".join(neutralise_csv(iter(split_every(data, n)), unquoted_text=unquoted_text))


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def written(rows: list[list[str]], terminator: str = "\r\n") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=terminator).writerows(rows)
    return buf.getvalue().encode()


def test_a_stream_of_any_chunking_neutralises_exactly_the_formula_cells():
    rows = [["side", "value", "note"]] + [[d, n, "a,=b\r\n=c"] for d in DANGEROUS for n in NUMBERS]
    data = written(rows)
    want = [[csv_cell(c) for c in row] for row in rows]
    for n in (1, 2, 3, 7, 64, 300, 1 << 20):
        out = through(data, n)
        assert rows_of(out) == want, n


def test_questdb_mode_checks_quoted_cells_only():
    """QuestDB's /exp quotes every string; its unquoted cells are numbers, booleans, nulls, CHARs."""
    data = (b'"s","n","c"\r\n"=HYPERLINK(""http://x"")",-1.5,-\r\n"-1.5",-1.0E-5,=\r\n"a,""=b""",1,\r\n'
            b'"x,",2,\r\n')
    want = (b'"s","n","c"\r\n"\'=HYPERLINK(""http://x"")",-1.5,-\r\n"-1.5",-1.0E-5,=\r\n"a,""=b""",1,\r\n'
            b'"x,",2,\r\n')
    for n in (1, 2, 5, 1 << 20):
        assert through(data, n, unquoted_text=False) == want, n


def test_a_closing_quote_before_crlf_is_not_a_cell_start():
    data = b'"a,","b"\r\n"c","d"\r\n'
    for mode in (True, False):
        assert through(data, 3, unquoted_text=mode) == data


def test_csv_lines_neutralises_header_and_cells():
    out = b"".join(csv_lines(["=h", "n"], iter([["=HYPERLINK(\"http://x\")", -1.5], ["-2", None]])))
    assert rows_of(out) == [["'=h", "n"], ["'=HYPERLINK(\"http://x\")", "-1.5"], ["-2", ""]]


def test_closing_the_stream_closes_its_source():
    closed = []

    def source():
        try:
            yield b"a,b\r\n" * 100
            yield b"c,d\r\n"
        finally:
            closed.append(True)

    stream = neutralise_csv(source())
    next(stream)
    stream.close()
    assert closed == [True]
