"""The outbox migration upgrades and downgrades on both databases, and builds what the models declare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from tests.migrations import downgrade_to, model_diff, read, round_trip_on_fresh_database, upgrade_to

OURS = ("outbox", "worker_heartbeats")


def _inspect(url: str) -> tuple[set[str], list[Any]]:
    def tables_and_diffs(sync: Connection) -> tuple[set[str], list[Any]]:
        return set(inspect(sync).get_table_names()), model_diff(sync, OURS)

    return read(url, tables_and_diffs)


def _round_trip(url: str) -> None:
    upgrade_to(url)
    tables, diffs = _inspect(url)
    assert set(OURS) <= tables and diffs == []
    downgrade_to(url, "0011")
    tables, _ = _inspect(url)
    assert not set(OURS) & tables and "workspaces" in tables
    upgrade_to(url)
    assert set(OURS) <= _inspect(url)[0]


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    await round_trip_on_fresh_database(database_url, tmp_path, _round_trip)
