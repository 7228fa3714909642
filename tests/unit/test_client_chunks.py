"""The client's cut of a CSV into chunks (stage1_client.upload_chunks): at row boundaries, each chunk
the header plus whole rows, together exactly the file's rows; only CSVs of kinds keyed by their own
columns, without quotes, are cut; the resume state file is private."""

from __future__ import annotations

from pathlib import Path

from stage1_client.upload_chunks import StateFile, chunk_body, chunkable, plan


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n


def _chunks(path: Path, chunk_bytes: int) -> list[bytes]:
    p = plan(path, chunk_bytes)
    out = []
    for offset, length in p.ranges:
        out.append(b"".join(chunk_body(path, p.header, offset, length, _Count(), [0])))
    assert [len(c) for c in out] == p.sizes()
    return out


def test_cuts_fall_after_a_newline_and_keep_every_row_once(tmp_path):
    header = b"timestamp,open,high,low,close,volume\n"
    rows = [f"{1_600_000_000 + i},{i}.5,{i}.75,{i}.25,{i}.5,{i * 3}\n".encode() for i in range(5000)]
    path = tmp_path / "bars.csv"
    path.write_bytes(header + b"".join(rows))
    for chunk_bytes in (1, 100, 4096, 50_000, 10**9):
        chunks = _chunks(path, chunk_bytes)
        assert all(c.startswith(header) and c.endswith(b"\n") for c in chunks)
        body = b"".join(c[len(header):] for c in chunks)
        assert body == b"".join(rows), chunk_bytes
        assert all(len(c) > len(header) for c in chunks)  # no chunk without rows


def test_a_last_row_without_newline_and_crlf_rows(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_bytes(b"timestamp,close\r\n1,2\r\n3,4\r\n5,6")
    chunks = _chunks(path, 3)
    assert chunks == [b"timestamp,close\r\n1,2\r\n", b"timestamp,close\r\n3,4\r\n", b"timestamp,close\r\n5,6"]


def test_what_is_cut(tmp_path):
    csv = tmp_path / "bars.csv"
    csv.write_bytes(b"timestamp,close\n" + b"1,2\n" * 1000)
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(b'timestamp,note\n1,"a\nb"\n' * 100)
    parquet = tmp_path / "bars.parquet"
    parquet.write_bytes(b"PAR1" + b"\0" * 5000)
    size = csv.stat().st_size
    assert chunkable(csv, "ohlcv", size, threshold=0)
    assert not chunkable(csv, "ohlcv", size, threshold=size)  # at or below the threshold: one object
    assert not chunkable(csv, "raw", size, threshold=0)  # raw rows are keyed by their ordinal in the file
    assert not chunkable(csv, "trades", size, threshold=0)
    assert not chunkable(quoted, "ohlcv", quoted.stat().st_size, threshold=0)  # a quoted newline could be cut
    assert not chunkable(parquet, "ohlcv", 5004, threshold=0)


def test_the_state_file_is_private(tmp_path):
    state = StateFile("k" * 32, tmp_path / "uploads")
    state.save({"upload_id": "u", "job_id": "j"})
    assert state.load() == {"upload_id": "u", "job_id": "j"}
    assert state.path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "uploads").stat().st_mode & 0o077 == 0
    state.path.write_text("not json")
    assert state.load() is None
    state.remove()
    assert not state.path.exists()
