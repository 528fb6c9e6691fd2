"""SQL functions that render differently per database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class IsoMillis(FunctionElement[str]):
    """A UTC timestamp column as RFC 3339 text with milliseconds and ``Z`` (``2026-11-29T16:00:00.123Z``),
    formatted by the database: reading a page of rows then neither parses nor formats datetimes in
    Python. Truncates to the millisecond, as ``datetime.isoformat(timespec="milliseconds")`` does."""

    type = String()
    inherit_cache = True
    name = "iso_millis"


@compiles(IsoMillis, "postgresql")
def _postgresql(element: IsoMillis, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


@compiles(IsoMillis, "sqlite")
def _sqlite(element: IsoMillis, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC: see models.UTCDateTime).
    column = compiler.process(element.clauses, **kw)
    return f"substr({column}, 1, 10) || 'T' || substr({column}, 12, 12) || 'Z'"
