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
        region_name=settings.store.s3_region,
        # MinIO (and most S3-compatible servers) want path-style URLs on a custom endpoint.
        s3={"addressing_style": "path" if settings.store.s3_endpoint else "auto"},
        # boto3 >= 1.36 adds CRC checksums by default, which presigned URLs and some servers reject.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=3,
        read_timeout=60,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.store.s3_endpoint:
        kwargs["endpoint_url"] = settings.store.s3_endpoint
    if settings.store.s3_access_key:
        kwargs["aws_access_key_id"] = settings.store.s3_access_key
        kwargs["aws_secret_access_key"] = settings.store.s3_secret_key
    return boto3.client("s3", **kwargs)


def reset_client() -> None:
    get_s3.reset()


# ---------------------------------------------------------------- presigned uploads
# SigV4 refuses presigned URLs that live longer than 7 days; the settings are held inside it.
SIGV4_MAX_SECONDS = 7 * 24 * 3600


def url_seconds(seconds: int) -> int:
    """A presigned URL's lifetime in seconds: the setting, held within 60 s .. SigV4's 7 days.
    (On AWS a URL signed with a role's session credentials also dies with that session.)"""
    return max(60, min(int(seconds), SIGV4_MAX_SECONDS))


def presigned_post(bucket: str, key: str, content_type: str, size: int, expires: int) -> dict[str, Any]:
    """A browser-form POST of exactly `size` bytes of `content_type` to `key`: the signed policy pins
    the key, the type and a content-length-range of [size, size], so the store refuses anything else."""
    return get_s3().generate_presigned_post(
        Bucket=bucket, Key=key, Fields={"Content-Type": content_type},
        Conditions=[["content-length-range", size, size], {"Content-Type": content_type}],
        ExpiresIn=url_seconds(expires),
    )


def presigned_part(bucket: str, key: str, multipart_id: str, number: int, length: int, expires: int) -> str:
    """A PUT URL for part `number` of a multipart upload, for exactly `length` bytes: with
    `ContentLength` SigV4 signs the Content-Length header, so a PUT of any other length (or a
    chunked one, without the header) fails the signature check (403/411)."""
    return get_s3().generate_presigned_url(
        "upload_part",
        Params={"Bucket": bucket, "Key": key, "UploadId": multipart_id, "PartNumber": number,
                "ContentLength": length},
        ExpiresIn=url_seconds(expires),
    )


def presigned_put(bucket: str, key: str, length: int, expires: int) -> str:
    """A PUT URL for one whole object of exactly `length` bytes (a chunk of a chunked upload): the
    signed Content-Length makes a PUT of any other length fail the signature check (403)."""
    return get_s3().generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key, "ContentLength": length}, ExpiresIn=url_seconds(expires),
    )
