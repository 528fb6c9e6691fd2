"""Migration 0019 upgrades and downgrades on both databases and builds what the models declare (the
outbox's ordering columns and index included); a downgrade keeps the outbox's other indexes."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from provisio.db.engine import Database
from provisio.db.migrate import alembic_config, upgrade
from provisio.db.models import Base
from tests.conftest import POSTGRES_ENV, _admin

OURS = ("webhook_endpoints", "webhook_attempts", "webhook_fanout")
OUTBOX_INDEXES = {"ix_outbox_pending_due", "ix_outbox_dead", "ix_outbox_sent", "ix_outbox_workspace_id"}


def _inspect(url: str) -> dict[str, Any]:
    def read(sync: Any) -> dict[str, Any]:
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

    async def go() -> dict[str, Any]:
        db = Database.from_url(url, pool_size=1)
        try:
            async with db.read_engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await db.dispose()

    return asyncio.run(go())


def _round_trip(url: str) -> None:
    upgrade(url)
    found = _inspect(url)
    assert set(OURS) <= found["tables"] and found["diffs"] == []
    assert {"ordering_key", "ordering_seq"} <= found["outbox_columns"]
    assert OUTBOX_INDEXES | {"ix_outbox_ordering"} <= found["outbox_indexes"]
    assert [tuple(row) for row in found["fanout"]] == [(1, -1, -1)]
    command.downgrade(alembic_config(url), "0020")
    found = _inspect(url)
    assert not set(OURS) & found["tables"] and "host_events" in found["tables"]
    assert not {"ordering_key", "ordering_seq"} & found["outbox_columns"]
    assert found["outbox_indexes"] >= OUTBOX_INDEXES and "ix_outbox_ordering" not in found["outbox_indexes"]
    upgrade(url)
    assert _inspect(url)["diffs"] == []


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    if database_url.startswith("sqlite"):
        await loop.run_in_executor(None, _round_trip, f"sqlite:///{tmp_path / 'migrate.db'}")
        return
    admin = os.environ[POSTGRES_ENV]
    name = f"provisio_migrate_{uuid.uuid4().hex[:8]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        await loop.run_in_executor(None, _round_trip, url)
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
