"""Tokens (admin), health, and read-only SQL: the calls that belong to no dataset, run or simulation."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stage1_client.core import BytesCallback, Core, Resource, query, segment
from stage1_wire.auth import TokenCreate, TokenInfo, TokenIssued, TokenList
from stage1_wire.health import Liveness, Readiness
from stage1_wire.jobs import JobOut
from stage1_wire.sql import ExportIn, QueryIn, QueryOut


class Tokens(Resource):
    """API tokens: issue (`create`: the token is in the answer this once), `list`, `revoke` (admin scope)."""

    def create(self, name: str, scopes: list[str], *, expires_in: int | None = None) -> TokenIssued:
        return self.client.request("POST", "/api/auth/token", TokenIssued,
                                   body=TokenCreate(name=name, scopes=scopes, expires_in=expires_in))  # type: ignore[arg-type]

    def list(self, *, limit: int = 100, offset: int = 0) -> TokenList:
        return self.client.request("GET", "/api/auth/tokens", TokenList, params=query(limit=limit, offset=offset))

    def revoke(self, token_id: str | uuid.UUID) -> TokenInfo:
        return self.client.request("DELETE", f"/api/auth/tokens/{segment(token_id)}", TokenInfo)


def health(client: Core) -> Liveness:
    return client.request("GET", "/api/health", Liveness)


def readiness(client: Core) -> Readiness:
    """Postgres, QuestDB and the object store: "ok" each, or a 503 `ApiError` (after the retry policy)."""
    return client.request("GET", "/api/healthz", Readiness)


def sql_query(client: Core, sql: str, *, limit: int | None = None) -> QueryOut:
    """Read-only SQL (`POST /api/questdb/query`), at most `limit` rows; a read, so retried like a GET."""
    return client.request("POST", "/api/questdb/query", QueryOut, body=QueryIn(sql=sql, limit=limit), safe=True)


def sql_export(client: Core, sql: str, dest: str | os.PathLike[str], *, format: str | None = None,
               mode: str = "auto", on_bytes: BytesCallback | None = None,
               on_job: Callable[[JobOut], None] | None = None, job_timeout: float | None = None) -> Path:
    """Read-only SQL to a file written by the server (`POST /api/questdb/export`): CSV, or Parquet
    written by QuestDB itself (`format="parquet"` or a `.parquet` name). A result too large for one
    response becomes an export job; it is followed and its presigned URL downloaded (`on_job` sees it)."""
    dest = Path(dest)
    fmt = format or ("parquet" if dest.suffix.lower() in (".parquet", ".pq") else "csv")
    body: Any = ExportIn(sql=sql, format=fmt, filename=dest.name)  # type: ignore[arg-type]
    return client.download("POST", "/api/questdb/export", dest, params=query(mode=mode), body=body,
                           on_bytes=on_bytes, on_job=on_job, job_timeout=job_timeout, safe=True)
