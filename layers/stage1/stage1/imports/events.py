"""S3 `ObjectCreated` notifications (AWS's bucket notification, and MinIO's webhook payload, which
has the same shape), typed. Object keys arrive URL-encoded (`+` for a space) in both and are
decoded here, once, when the event is decoded."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import msgspec

from stage1.core.events import decode_as
from stage1.jobs.events import JobEvent


class S3Bucket(msgspec.Struct, frozen=True):
    name: str = ""


class S3Object(msgspec.Struct, frozen=True):
    key: str
    size: int | None = None

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "key", unquote_plus(self.key))


class S3Entity(msgspec.Struct, frozen=True):
    object: S3Object
    bucket: S3Bucket = S3Bucket()


class S3Record(msgspec.Struct, frozen=True):
    eventName: str  # noqa: N815 - S3's field name
    s3: S3Entity

    @property
    def created(self) -> bool:
        return self.eventName.startswith(("ObjectCreated", "s3:ObjectCreated"))


class S3Event(msgspec.Struct, frozen=True):
    Records: list[S3Record]  # noqa: N815 - S3's field name


def decode_importer_event(event: Any) -> S3Event | JobEvent | None:
    """What the ImporterFunction was sent: S3 records, a dispatched job, or None (logged: ignored)."""
    if isinstance(event, S3Event | JobEvent):
        return event
    if isinstance(event, dict) and "Records" in event:
        return decode_as(event, S3Event)
    return decode_as(event, JobEvent)
