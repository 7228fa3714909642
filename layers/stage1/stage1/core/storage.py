"""The object-store client: boto3 configured to work against both AWS S3 and MinIO."""

from __future__ import annotations

from typing import Any

from stage1.core.lazy import lazy
from stage1.core.settings import get_settings


@lazy
def get_s3() -> Any:
    """A process-wide S3 client, created on first use (importing boto3 costs a cold start ~100 ms)."""
    import boto3
    from botocore.config import Config

    settings = get_settings()
    config = Config(
        signature_version="s3v4",
        region_name=settings.s3_region,
        # MinIO (and most S3-compatible servers) want path-style URLs on a custom endpoint.
        s3={"addressing_style": "path" if settings.s3_endpoint else "auto"},
        # boto3 >= 1.36 adds CRC checksums by default, which presigned URLs and some servers reject.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=3,
        read_timeout=60,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.s3_endpoint:
        kwargs["endpoint_url"] = settings.s3_endpoint
    if settings.s3_access_key:
        kwargs["aws_access_key_id"] = settings.s3_access_key
        kwargs["aws_secret_access_key"] = settings.s3_secret_key
    return boto3.client("s3", **kwargs)


def reset_client() -> None:
    get_s3.reset()
