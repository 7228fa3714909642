"""Deprecated: the old home of the record helpers, kept only for `datasets/schemas.py` and
`runs/schemas.py` (the wire helper's files) until they import `stage1_wire.names` directly.

Where things went: names and times of bodies → `stage1_wire.names`; ids and references →
`stage1.core.refs`; database times → `stage1.core.times`; times in bodies →
`stage1.timeseries.client_times`; CSV → `stage1.core.csvtext`; paging → `stage1.core.paging`;
parameters and responses → `stage1.web.params` / `stage1.web.responses`."""

from __future__ import annotations

from stage1_wire.names import NAME_PATTERN, ClientTime, Measurement, Slug, UnixSeconds

__all__ = ["NAME_PATTERN", "ClientTime", "Measurement", "Slug", "UnixSeconds"]
