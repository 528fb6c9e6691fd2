"""The provisioning log's migration upgrades and downgrades on both databases and matches the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from tests.migrations import downgrade_to, model_diff, read, round_trip_on_fresh_database, upgrade_to

NEW_COLUMNS = {"request_id", "credential", "user_agent", "scim_type", "duration_ms", "request_body"}
NEW_COLUMNS |= {"repeats", "last_at", "aggregate_key"}


def _columns_and_diff(url: str) -> tuple[set[str], list[Any]]:
    def inspect_log(conn: Connection) -> tuple[set[str], list[Any]]:
        described = inspect(conn).get_columns("provisioning_events")
        columns = {c["name"] for c in described}
        if conn.dialect.name == "postgresql" and "request_id" in columns:
            # userNames compare by code point, so that a userName prefix is an index range.
            user_name = next(c for c in described if c["name"] == "user_name")
            assert user_name["type"].collation == "C"
        return columns, model_diff(conn, ["provisioning_events"])

    return read(url, inspect_log)


def _round_trip(url: str) -> None:
    upgrade_to(url)
    columns, diff = _columns_and_diff(url)
    assert columns >= NEW_COLUMNS
    assert diff == []  # the migration makes exactly what the models declare
    downgrade_to(url, "0012")
    columns, _ = _columns_and_diff(url)
    assert not NEW_COLUMNS & columns and "detail" in columns
    upgrade_to(url)
    assert _columns_and_diff(url)[0] >= NEW_COLUMNS


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    await round_trip_on_fresh_database(database_url, tmp_path, _round_trip)
