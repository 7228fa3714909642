"""The resource reads that may become export jobs (CSV of OHLCV/indicator rows, predictions, trades).

A job records the reader's *name* and its keyword arguments; the worker calls the same service
function again and streams its CSV. Only the names below can be called: nothing in a job payload
chooses code or SQL beyond these functions' own validated parameters.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from stage1.core.csvtext import CsvBody, release_chunks

READERS: dict[str, tuple[str, str]] = {
    "datasets.rows": ("stage1.datasets.service", "read_rows"),
    "runs.predictions": ("stage1.runs.service", "read_predictions"),
    "simulations.trades": ("stage1.simulations.service", "read_trades"),
    "simulations.equity": ("stage1.simulations.equity", "read_equity"),
}


def read(name: str, args: dict[str, Any]) -> Any:
    """Call a registered reader: a `CsvBody` for `fmt="csv"`, its JSON Struct otherwise."""
    module, attr = READERS[name]
    return getattr(importlib.import_module(module), attr)(**args)


def read_csv(name: str, args: dict[str, Any]) -> CsvBody:
    result = read(name, {**args, "fmt": "csv"})
    if not isinstance(result, CsvBody):
        raise TypeError(f"reader {name} returned {type(result).__name__}, not CSV")
    return result


def close_chunks(chunks: Iterator[bytes]) -> None:
    """Release a reader's CSV chunks (see `stage1.core.csvtext.release_chunks`)."""
    release_chunks(chunks)
