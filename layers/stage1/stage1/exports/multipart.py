"""Write a stream of bytes to the bucket as an S3 multipart upload, with bounded memory.

Pieces collect into one part (`part_bytes`, ≥ 5 MiB as S3 requires for all but the last part); a
full part is uploaded by a background thread while the next fills, with at most `max_in_flight`
parts pending. Peak memory ≈ (max_in_flight + 1) × part_bytes, whatever the size of the export.
On any failure the upload is aborted, so no orphaned parts stay billed.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from stage1.core.lazy import lazy
from stage1.core.storage import get_s3

MIN_PART = 5 * 1024 * 1024

# One pool for the process (a warm Lambda, the local gateway): threads are not created per export.
@lazy
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="export-part")


class MultipartWriter:
    def __init__(self, bucket: str, key: str, *, content_type: str, part_bytes: int, max_in_flight: int = 3,
                 s3: Any = None) -> None:
        self.bucket, self.key = bucket, key
        self.part_bytes = max(MIN_PART, int(part_bytes))
        self.s3 = s3 or get_s3()
        self.upload_id: str = self.s3.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
        self._pieces: list[bytes] = []
        self._size = 0
        self._parts: list[Future[dict[str, Any]]] = []
        self._slots = threading.Semaphore(max_in_flight)
        self.bytes = 0
        self._closed = False

    def write(self, data: bytes) -> None:
        self._pieces.append(data)
        self._size += len(data)
        self.bytes += len(data)
        if self._size >= self.part_bytes:
            self._flush()

    def _flush(self) -> None:
        body = b"".join(self._pieces)  # the one copy of the part's bytes
        self._pieces, self._size = [], 0
        number = len(self._parts) + 1
        self._slots.acquire()  # back-pressure: at most max_in_flight parts wait for upload
        for done in [f for f in self._parts if f.done()]:
            done.result()  # surface an upload error early
        self._parts.append(_executor().submit(self._upload, number, body))

    def _upload(self, number: int, body: bytes) -> dict[str, Any]:
        try:
            response = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                           PartNumber=number, Body=body)
            return {"PartNumber": number, "ETag": response["ETag"]}
        finally:
            self._slots.release()

    def complete(self) -> None:
        if self._pieces or not self._parts:  # the last part (may be small, even empty)
            self._flush()
        parts = [f.result() for f in self._parts]
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                          MultipartUpload={"Parts": parts})
        self._closed = True

    def abort(self) -> None:
        if self._closed:
            return
        for future in self._parts:
            future.cancel()
        for future in self._parts:  # let running uploads end before the upload is aborted
            if not future.cancelled():
                with contextlib.suppress(Exception):  # aborting anyway
                    future.result()
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        finally:
            self._closed = True
