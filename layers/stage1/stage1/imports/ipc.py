"""Arrow IPC (file or stream) read one message at a time, each message's size checked from its
header BEFORE its body is read or decompressed.

`pyarrow.ipc` reads a whole record batch (and decompresses LZ4/ZSTD buffers) before anyone can
look at its size, so a small file can hold a batch of gigabytes. The encapsulated message format
is simple: `0xFFFFFFFF`, an int32 metadata length, a flatbuffer `Message` (which holds
`bodyLength` and, for a record batch, its buffers and compression), then the body. The few fields
needed are read here from the flatbuffer; pyarrow then decodes each checked message.
The file format is the stream format between an 8-byte magic and a footer, so one reader serves both.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from stage1.imports.errors import ImportFailed
from stage1.imports.limits import Limits, check_columns, over

_CONTINUATION = b"\xff\xff\xff\xff"
_SCHEMA, _DICTIONARY, _RECORD_BATCH = 1, 2, 3


def _u16(b: bytes, pos: int) -> int:
    return struct.unpack_from("<H", b, pos)[0]


def _u32(b: bytes, pos: int) -> int:
    return struct.unpack_from("<I", b, pos)[0]


def _i64(b: bytes, pos: int) -> int:
    return struct.unpack_from("<q", b, pos)[0]


def _field(b: bytes, table: int, index: int) -> int | None:
    """Absolute position of field `index` of the flatbuffer table at `table`, or None if absent."""
    vtable = table - struct.unpack_from("<i", b, table)[0]
    if 4 + 2 * index >= _u16(b, vtable):
        return None
    offset = _u16(b, vtable + 4 + 2 * index)
    return table + offset if offset else None


def _ref(b: bytes, pos: int) -> int:
    return pos + _u32(b, pos)


def _batch_sizes(meta: bytes, batch: int, body: bytes | None) -> tuple[int, int]:
    """(rows, decoded bytes of the buffers) of a RecordBatch table; compressed buffers count their
    declared uncompressed length (the int64 before each compressed buffer)."""
    rows_at = _field(meta, batch, 0)
    rows = _i64(meta, rows_at) if rows_at is not None else 0
    buffers_at = _field(meta, batch, 2)
    compressed = _field(meta, batch, 3) is not None
    total = 0
    if buffers_at is not None:
        vec = _ref(meta, buffers_at)
        for i in range(_u32(meta, vec)):
            offset, length = struct.unpack_from("<qq", meta, vec + 4 + 16 * i)
            if compressed and length >= 8 and body is not None:
                declared = _i64(body, offset) if offset + 8 <= len(body) else -1
                total += length - 8 if declared < 0 else declared
            else:
                total += length
    return rows, total


class Message:
    __slots__ = ("body", "kind", "meta")

    def __init__(self, kind: int, meta: bytes, body: bytes) -> None:
        self.kind, self.meta, self.body = kind, meta, body

    def encoded(self) -> bytes:
        return _CONTINUATION + struct.pack("<i", len(self.meta)) + self.meta + self.body


def _read(f: Any, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ImportFailed(f"Arrow IPC file is truncated ({what})", {"library": "stage1.imports.ipc"})
    return bytes(data)


def _next(f: Any, limits: Limits) -> Message | None:
    head = f.read(4)
    if len(head) < 4:
        return None  # end of a stream without an end marker
    if head == _CONTINUATION:
        head = _read(f, 4, "message length")
    length = struct.unpack("<i", head)[0]
    if length == 0:
        return None  # end-of-stream marker
    if length < 0 or length > limits.metadata_bytes:
        raise over("Arrow IPC message header bytes", length, limits.metadata_bytes, "import_max_metadata_bytes")
    meta = _read(f, length, "message header")
    try:
        root = _u32(meta, 0)
        kind_at, body_at = _field(meta, root, 1), _field(meta, root, 3)
        kind = meta[kind_at] if kind_at is not None else 0
        body_len = _i64(meta, body_at) if body_at is not None else 0
    except (struct.error, IndexError):
        raise ImportFailed("Arrow IPC message header is malformed", {"library": "stage1.imports.ipc"}) from None
    if body_len < 0 or body_len > limits.batch_bytes:
        raise over("Arrow IPC record batch bytes", body_len, limits.batch_bytes, "import_max_batch_bytes")
    body = _read(f, body_len, "message body")
    if kind in (_RECORD_BATCH, _DICTIONARY):
        try:
            header = _ref(meta, _field(meta, root, 2) or 0)
            batch = header if kind == _RECORD_BATCH else _ref(meta, _field(meta, header, 1) or 0)
            _, decoded = _batch_sizes(meta, batch, body)
        except (struct.error, IndexError):
            raise ImportFailed("Arrow IPC message header is malformed", {"library": "stage1.imports.ipc"}) from None
        if decoded > limits.batch_bytes:
            raise over("Arrow IPC record batch bytes (decompressed)", decoded, limits.batch_bytes,
                       "import_max_batch_bytes")
    return Message(kind, meta, body)


def open_ipc(f: Any, head: bytes, limits: Limits) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and a generator of checked record batches of an Arrow IPC file or stream."""
    if head[:6] == b"ARROW1":
        _read(f, 8, "magic")
    else:
        f.seek(0)
    first = _next(f, limits)
    if first is None or first.kind != _SCHEMA:
        raise ImportFailed("Arrow IPC file does not start with a schema", {"library": "stage1.imports.ipc"})
    try:
        schema = ipc.read_schema(pa.py_buffer(first.encoded()))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportFailed(f"Arrow IPC schema could not be read: {exc}", {"library": "pyarrow.ipc"}) from exc
    check_columns(len(schema), limits)
    return schema, _batches(f, first, limits)


def _batches(f: Any, schema_message: Message, limits: Limits) -> Iterator[pa.RecordBatch]:
    prefix = [schema_message.encoded()]  # the schema and the dictionaries seen so far
    prefix_bytes = len(prefix[0])
    while (message := _next(f, limits)) is not None:
        if message.kind == _DICTIONARY:
            prefix.append(message.encoded())
            prefix_bytes += len(prefix[-1])
            if prefix_bytes > limits.batch_bytes:
                raise over("Arrow IPC dictionary bytes", prefix_bytes, limits.batch_bytes, "import_max_batch_bytes")
            continue
        if message.kind != _RECORD_BATCH:
            continue
        stream = b"".join([*prefix, message.encoded(), _CONTINUATION, b"\0\0\0\0"])
        try:
            batch = ipc.open_stream(pa.py_buffer(stream)).read_next_batch()
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, StopIteration) as exc:
            raise ImportFailed(f"Arrow IPC data could not be read: {exc}", {"library": "pyarrow.ipc"}) from exc
        del stream
        yield batch
