"""File formats by name (no pyarrow here: the API functions use this). The importer recognises
the format again from the object's first bytes; see `stage1.imports.formats`."""

from __future__ import annotations

CSV, CSV_GZ, PARQUET, ARROW = "csv", "csv.gz", "parquet", "arrow"
FORMATS = (CSV, CSV_GZ, PARQUET, ARROW)
EXTENSIONS = {CSV: "csv", CSV_GZ: "csv.gz", PARQUET: "parquet", ARROW: "arrow"}
CONTENT_TYPES = {
    "text/csv": CSV, "application/csv": CSV, "text/plain": CSV, "application/gzip": CSV_GZ,
    "application/x-gzip": CSV_GZ, "application/vnd.apache.parquet": PARQUET, "application/x-parquet": PARQUET,
    "application/vnd.apache.arrow.file": ARROW, "application/vnd.apache.arrow.stream": ARROW,
    "application/octet-stream": None,
}
# What the object is stored as (the presigned POST pins it).
STORED_CONTENT_TYPE = {CSV: "text/csv", CSV_GZ: "application/gzip", PARQUET: "application/vnd.apache.parquet",
                       ARROW: "application/vnd.apache.arrow.file"}


def format_from_name(filename: str, content_type: str = "") -> str | None:
    """The format a client names by file extension (else by content type); None if unknown."""
    name, ctype = filename.lower().strip(), content_type.lower().split(";")[0].strip()
    if name.endswith((".csv.gz", ".csv.gzip", ".gz")):
        return CSV_GZ
    if name.endswith((".csv", ".txt")):
        return CSV
    if name.endswith((".parquet", ".pq")):
        return PARQUET
    if name.endswith((".arrow", ".feather", ".ipc", ".arrows")):
        return ARROW
    return CONTENT_TYPES.get(ctype)


def known_content_type(content_type: str) -> bool:
    return content_type.lower().split(";")[0].strip() in CONTENT_TYPES
