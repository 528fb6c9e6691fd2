"""Migration 0021 upgrades and downgrades on both databases and builds what the models declare (the
outbox's ordering columns and index included); a downgrade keeps the outbox's other indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from provisio.db.models import Base
from tests.migrations import downgrade_to, read, round_trip_on_fresh_database, upgrade_to

OURS = ("webhook_endpoints", "webhook_attempts", "webhook_fanout")
OUTBOX_INDEXES = {"ix_outbox_pending_due", "ix_outbox_dead", "ix_outbox_sent", "ix_outbox_workspace_id"}


def _inspect(url: str) -> dict[str, Any]:
    def look(sync: Any) -> dict[str, Any]:
        diffs = compare_metadata(MigrationContext.configure(sync), Base.metadata)
        found = inspect(sync)
        return {
            "tables": set(found.get_table_names()),
            "diffs": [d for d in diffs if any(t in str(d) for t in (*OURS, "outbox"))],
            "outbox_columns": {c["name"] for c in found.get_columns("outbox")},
            "outbox_indexes": {i["name"] for i in found.get_indexes("outbox")},
            "fanout": sync.execute(text("SELECT id, txid, seq FROM webhook_fanout")).all()
            if "webhook_fanout" in found.get_table_names()
            else None,
        }

    return read(url, look)


def _round_trip(url: str) -> None:
    upgrade_to(url)
    found = _inspect(url)
    assert set(OURS) <= found["tables"] and found["diffs"] == []
    assert {"ordering_key", "ordering_seq"} <= found["outbox_columns"]
    assert OUTBOX_INDEXES | {"ix_outbox_ordering"} <= found["outbox_indexes"]
    assert [tuple(row) for row in found["fanout"]] == [(1, -1, -1)]
    downgrade_to(url, "0020")
    found = _inspect(url)
    assert not set(OURS) & found["tables"] and "host_events" in found["tables"]
    assert not {"ordering_key", "ordering_seq"} & found["outbox_columns"]
    assert found["outbox_indexes"] >= OUTBOX_INDEXES and "ix_outbox_ordering" not in found["outbox_indexes"]
    upgrade_to(url)
    assert _inspect(url)["diffs"] == []


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    await round_trip_on_fresh_database(database_url, tmp_path, _round_trip)
