"""QuestDB access: identifier validation, the HTTP query client and the ILP-over-HTTP sender.

QuestDB's HTTP endpoints (`/exec`, `/exp`) take no bind parameters. The rule here: user text
never reaches QuestDB SQL. Identifiers pass `ident()` (`[a-z0-9_]`, at most 63 characters) and
are quoted; values pass `literal()`, which accepts only already-parsed Python numbers and
datetimes and refuses strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from stage1.core.errors import BadRequest, ServiceUnavailable
from stage1.core.lazy import lazy
from stage1.core.settings import Settings, get_settings

if TYPE_CHECKING:
    import httpx
    from questdb import Sender

IDENT_MAX = 63
_IDENT_RE = re.compile(r"^[a-z0-9_]{1,63}$")


def ident(name: str, what: str = "measurement") -> str:
    """Return `name` if it is a safe QuestDB identifier, else raise a 400 naming the field."""
    if not isinstance(name, str) or not _IDENT_RE.fullmatch(name):
        raise BadRequest(
            f"invalid {what}: use 1-{IDENT_MAX} characters from [a-z0-9_]",
            {"field": what, "value": str(name)[:80]},
        )
    return name


# An import's own staging table (`stage1.imports.core.staging_name`): `<target>__s<8 hex of the job id>`.
# It holds half an import until its commit (docs/imports.md "Exactly one copy"), so it is internal: no
# client may give such a name (`stage1.timeseries.ownership.check_name`), the raw SQL guard refuses it
# in any spelling (`stage1.sql.readonly`) and the measurements list/detail leave it out. Matched at the
# end of any text, in any case: QuestDB compares table names case-insensitively and reads a quoted
# `"public.<name>"` as `<name>`.
STAGING_MARK = "__s"
_STAGING_RE = re.compile(STAGING_MARK + r"[0-9a-f]{8}$", re.IGNORECASE)


def is_staging(name: str) -> bool:
    """True if `name` (a table name as any client could spell it) is an import's staging table."""
    return isinstance(name, str) and _STAGING_RE.search(name) is not None


def quote(name: str, what: str = "measurement") -> str:
    return f'"{ident(name, what)}"'


def literal(value: int | float | datetime | None) -> str:
    """A SQL literal for a value the type system has already parsed (never user text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, datetime):
        ts = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return f"'{ts.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"
    raise TypeError(f"refusing to render {type(value).__name__} into QuestDB SQL")


def ts_literal_from_unix(seconds: int) -> str:
    """A designated-timestamp literal for unix seconds (QuestDB timestamps are microseconds)."""
    return f"cast({int(seconds) * 1_000_000} as timestamp)"


class Column(msgspec.Struct):
    name: str
    type: str


class QueryResult(msgspec.Struct):
    # DDL statements answer `{"ddl": "OK"}`: no columns, no dataset.
    columns: list[Column] = msgspec.field(default_factory=list)
    dataset: list[list[Any]] = msgspec.field(default_factory=list)
    count: int = 0
    ddl: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        names = [c.name for c in self.columns]
        return [dict(zip(names, row, strict=False)) for row in self.dataset]


class QuestDBError(BadRequest):
    """QuestDB refused a statement; its own text is relayed in `details.questdb`."""

    def __init__(self, message: str, questdb_message: str, position: int | None = None) -> None:
        super().__init__(message, {"questdb": questdb_message, "position": position})
        self.questdb_message = questdb_message


class _ExecError(msgspec.Struct):
    error: str = ""
    position: int | None = None


class QuestDB:
    """A thin client over QuestDB's HTTP API, one `httpx.Client` per process."""

    def __init__(self, settings: Settings) -> None:
        auth = (settings.questdb.qdb_user, settings.questdb.qdb_password) if settings.questdb.qdb_user else None
        self.base_url = settings.questdb.qdb_http_url.rstrip("/")
        self.timeout = settings.questdb.qdb_timeout
        # httpx is imported by the first client, not by this module: a function whose first request
        # never reaches QuestDB does not pay ~30 ms of cold start for it.
        import httpx

        self._client = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            timeout=httpx.Timeout(self.timeout, connect=3.0),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    def exec(self, sql: str, *, limit: str | None = None, timeout: float | None = None) -> QueryResult:
        params = {"query": sql}
        if limit:
            params["limit"] = limit
        response = self._send("GET", "/exec", params=params, timeout=timeout)
        if response.status_code == 200:
            return msgspec.json.decode(response.content, type=QueryResult)
        raise self._error(response)

    def exec_bounded(self, sql: str, *, max_bytes: int, timeout: float | None = None) -> QueryResult | None:
        """`exec` whose answer is read streamed and given up (None) past `max_bytes`: the caller
        asks for less. Memory stays bounded by bytes whatever the rows hold."""
        import httpx

        request = self._client.build_request("GET", "/exec", params={"query": sql}, timeout=self._timeout(timeout),
                                             headers=self._statement_timeout(timeout))
        try:
            response = self._client.send(request, stream=True)
            try:
                body = bytearray()
                for piece in response.iter_raw(1 << 16):
                    body += piece
                    if len(body) > max_bytes:
                        return None
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise ServiceUnavailable("questdb", str(exc) or type(exc).__name__) from exc
        if response.status_code == 200:
            return msgspec.json.decode(body, type=QueryResult)
        raise self._error(httpx.Response(response.status_code, content=bytes(body)))

    @contextmanager
    def export(self, sql: str, *, timeout: float | None = None) -> Iterator[Iterator[bytes]]:
        """Stream `/exp` CSV. Yields an iterator of raw chunks; nothing is buffered whole."""
        import httpx

        request = self._client.build_request(
            "GET", "/exp", params={"query": sql}, timeout=self._timeout(timeout),
            headers=self._statement_timeout(timeout),
        )
        try:
            response = self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ServiceUnavailable("questdb", str(exc) or type(exc).__name__) from exc
        try:
            if response.status_code != 200:
                response.read()
                raise self._error(response)
            yield response.iter_raw(1 << 16)
        finally:
            response.close()

    def write_lines(self, body: bytes, *, timeout: float | None = None) -> None:
        """POST line protocol (microsecond timestamps) to `/write`: one transaction per table.
        Encode the lines with `stage1.core.ilp.encode_row`."""
        response = self._send("POST", "/write", params={"precision": "u"}, content=body, timeout=timeout)
        if response.status_code not in (200, 204):
            raise self._ilp_error(response)

    @staticmethod
    def _ilp_error(response: httpx.Response) -> Exception:
        if response.status_code >= 500:
            return ServiceUnavailable("questdb", f"HTTP {response.status_code}", {"questdb": response.text[:500]})
        return QuestDBError("questdb rejected the rows", response.text[:500])

    def table_exists(self, name: str) -> bool:
        sql = f"select table_name from tables() where table_name = '{ident(name)}'"  # noqa: S608 - validated
        return self.exec(sql).count > 0

    def _send(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self._client.request(
                method, path, timeout=self._timeout(timeout), headers=self._statement_timeout(timeout), **kwargs
            )
        except httpx.TransportError as exc:
            raise ServiceUnavailable("questdb", str(exc) or type(exc).__name__) from exc

    def _timeout(self, timeout: float | None) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(timeout or self.timeout, connect=3.0)

    @staticmethod
    def _statement_timeout(timeout: float | None) -> dict[str, str]:
        # QuestDB cancels the statement itself when this elapses, so no work outlives the request.
        return {"Statement-Timeout": str(int(timeout * 1000))} if timeout else {}

    @staticmethod
    def _error(response: httpx.Response) -> Exception:
        if response.status_code >= 500:
            return ServiceUnavailable("questdb", f"HTTP {response.status_code}", {"questdb": response.text[:500]})
        try:
            body = msgspec.json.decode(response.content, type=_ExecError)
        except msgspec.DecodeError:
            body = _ExecError(error=response.text[:500])
        return QuestDBError("questdb rejected the query", body.error, body.position)

    def close(self) -> None:
        self._client.close()


@lazy
def get_questdb() -> QuestDB:
    return QuestDB(get_settings())


def ilp_conf(settings: Settings | None = None, **options: str | int) -> str:
    """The `questdb` client's configuration string for ILP over HTTP against our server."""
    import httpx

    settings = settings or get_settings()
    url = httpx.URL(settings.questdb.qdb_http_url)
    scheme = "https" if url.scheme == "https" else "http"
    parts = [f"{scheme}::addr={url.host}:{url.port or (443 if scheme == 'https' else 80)}"]
    if settings.questdb.qdb_user:
        parts += [f"username={settings.questdb.qdb_user}", f"password={settings.questdb.qdb_password}"]
    parts += [f"{key}={value}" for key, value in options.items()]
    return ";".join(parts) + ";"


def ilp_sender(**options: str | int) -> Sender:
    """A new ILP-over-HTTP `Sender` (use it as a context manager). Flushing is explicit by default:
    each `flush()` is one HTTP request and, per table, one QuestDB transaction."""
    from questdb import Sender  # imported here: only writers pay for the native module

    options.setdefault("auto_flush", "off")
    return Sender.from_conf(ilp_conf(**options))
