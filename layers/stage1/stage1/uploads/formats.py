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


# Bidirectional overrides and isolates: they make "x\u202evsc.exe" read as "x.exe.csv" wherever a
# name is shown.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def filename_problem(filename: str) -> str | None:
    """Why a client's file name is unusable, or None. A name is a base name (the object key is the
    server's own, but the name is stored and shown): no path separators, no `.`/`..`, no control,
    line-separator or bidirectional characters. Any other unicode is a name like any other."""
    import unicodedata

    if not filename.strip():
        return "the file name is empty"
    if "/" in filename or "\\" in filename:
        return "the file name must be a base name, without / or \\"
    if filename.strip() in (".", ".."):
        return "the file name must not be . or .."
    for ch in filename:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            return f"the file name contains the control character U+{ord(ch):04X}"
    return None


def content_type_problem(content_type: str) -> str | None:
    """Why a declared content type is unusable, or None (empty: none declared)."""
    if not content_type:
        return None
    if not (content_type.isascii() and content_type.isprintable()):
        return "the content type must be printable ASCII"
    if not known_content_type(content_type):
        return "unsupported content_type"
    return None
