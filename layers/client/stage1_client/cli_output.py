"""Output helpers of the `stage1` command: consoles, tables, cells, JSON, progress bars.

Shared by `stage1_client.cli` and `stage1_client.cli_commands`; rich is imported only inside them."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def _consoles() -> tuple[Console, Console]:
    """stdout for results, stderr for progress and errors. Not a terminal (a pipe, a log): wide
    enough that tables do not wrap, and no colour codes."""
    from rich.console import Console

    out, err = Console(), Console(stderr=True)
    if not out.is_terminal:
        out = Console(width=200, no_color=True)
    if not err.is_terminal:
        err = Console(stderr=True, width=200, no_color=True)
    return out, err


def _ts(value: Any) -> str:
    """Unix seconds or a datetime → `YYYY-MM-DD HH:MM` UTC; None → ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _compact(value: Any, limit: int = 60) -> str:
    import json

    if not value:
        return ""
    text = json.dumps(value, separators=(",", ":"), default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(title: str, columns: list[str], rows: list[list[Any]], *, caption: str | None = None) -> Any:
    from rich.table import Table

    table = Table(title=title, caption=caption, header_style="bold", title_justify="left", caption_justify="left")
    for name in columns:
        table.add_column(name, justify="right" if name.endswith(("rows", "count", "trades", "folds", "#")) else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*[str(v) for v in row])
    return table


def _kv(title: str, pairs: list[tuple[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left", box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        table.add_row(key, str(value) if value is not None else "")
    return table


def _print_json(obj: Any) -> None:
    import msgspec

    sys.stdout.write(msgspec.json.format(msgspec.json.encode(obj), indent=2).decode() + "\n")


def _bytes_progress(err: Console) -> Any:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err)
