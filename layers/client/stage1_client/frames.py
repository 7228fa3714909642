"""Pages of rows as pandas DataFrames (the `frames` extra: `pip install './layers/client[frames]'`).

pandas is imported here, when a frame is asked for, never by the rest of the client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stage1_client.errors import ApiError
from stage1_wire.compare import RunComparison
from stage1_wire.datasets import Rows
from stage1_wire.runs import Predictions

if TYPE_CHECKING:
    import pandas


def to_frame(page: Rows | Predictions) -> pandas.DataFrame:
    """A page of `datasets.rows()` or `runs.predictions()` as a DataFrame, columns in the API's order."""
    try:
        import pandas
    except ImportError as exc:
        raise ApiError(0, "DataFrames need pandas: pip install './layers/client[frames]'") from exc
    records = page.rows if isinstance(page, Rows) else page.predictions
    return pandas.DataFrame.from_records(records, columns=page.columns)


def comparison_frame(table: RunComparison) -> pandas.DataFrame:
    """`runs.compare()` as a DataFrame: index `key`, one column per run id (values as the API gave
    them, object dtype), then `section` and `differs`."""
    try:
        import pandas
    except ImportError as exc:
        raise ApiError(0, "DataFrames need pandas: pip install './layers/client[frames]'") from exc
    ids = [str(r.run_id) for r in table.runs]
    frame = pandas.DataFrame([row.values for row in table.rows], columns=ids, dtype=object,
                             index=pandas.Index([row.key for row in table.rows], name="key"))
    frame["section"] = [row.section for row in table.rows]
    frame["differs"] = [row.differs for row in table.rows]
    return frame
