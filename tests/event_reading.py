"""Reading host events in tests, on a PostgreSQL server other test runs may share.

A reader returns only events of transactions older than the oldest one still running anywhere on the
server (``provisio.domain.host_events``): another session's open write transaction, in any database,
holds every reader back until it ends. ``settle`` waits (bounded) until everything committed before it
is readable, so that a test can then assert what is there and what is not.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from provisio.db.engine import Database
from provisio.domain import host_events
from provisio.domain.host_events import Position, StoredEvent

SETTLE_TIMEOUT_S = 60.0


async def settle(db: Database) -> None:
    """Return once every transaction that committed before the call is behind the readers' horizon."""
    if db.dialect != "postgresql":
        return  # one writer at a time: a commit is readable at once
    async with db.reading() as session:
        barrier = (await session.execute(text("SELECT pg_current_xact_id()::text::bigint"))).scalar_one()
    horizon = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        async with db.reading() as session:
            if (await session.execute(horizon)).scalar_one() > barrier:
                return
        if time.monotonic() > deadline:
            raise AssertionError("a transaction on the PostgreSQL server stayed open for a minute")
        await asyncio.sleep(0.02)


async def tail(db: Database) -> Position:
    """A cursor after every event committed so far."""
    await settle(db)
    async with db.reading() as session:
        return await host_events.tail(session)


async def events_after(db: Database, after: Position, workspace_id: str | None = None) -> list[StoredEvent]:
    """Every event after ``after`` committed before the call, oldest first."""
    await settle(db)
    async with db.reading() as session:
        return await host_events.read_after(session, after, limit=10_000, workspace_id=workspace_id)
