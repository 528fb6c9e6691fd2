"""Host events: the order readers see, and that no commit can land behind a reader's cursor."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from provisio.db.engine import Database
from provisio.db.models import HostEvent, utcnow
from provisio.domain import host_events
from provisio.domain.host_events import Actor, Position
from tests.conftest import Tenant
from tests.event_reading import events_after, tail

OPERATOR = Actor(host_events.OPERATOR, "1", "test")


async def _emit(db: Database, tenant: Tenant, n: int) -> str:
    async with db.writing() as session:
        return await host_events.emit(
            session,
            type=host_events.SEATS_PURCHASED,
            workspace_id=tenant.id,
            actor=OPERATOR,
            data={"n": n},
        )


async def _read_all(db: Database, tenant: Tenant, after: Position = host_events.START) -> list[str]:
    return [e.id for e in await events_after(db, after, tenant.id)]


async def _read_now(db: Database, tenant: Tenant, after: Position) -> list[str]:
    """What a reader gets at once, without waiting for other transactions to end."""
    async with db.reading() as session:
        events = await host_events.read_after(session, after, limit=1000, workspace_id=tenant.id)
    return [e.id for e in events]


async def test_events_read_in_the_order_they_were_written(db: Database, tenant: Tenant) -> None:
    start = await tail(db)  # after the events of the tenant's own setup
    written = [await _emit(db, tenant, n) for n in range(5)]
    assert await _read_all(db, tenant, start) == written
    async with db.reading() as session:
        first_two = await host_events.read_after(session, start, limit=2, workspace_id=tenant.id)
    assert [e.id for e in first_two] == written[:2]
    after = Position.decode(first_two[-1].position.encode())
    assert await _read_all(db, tenant, after) == written[2:]
    # The tail is the newest readable event: a cursor from which nothing written so far is read again.
    assert await tail(db) == (await events_after(db, start, tenant.id))[-1].position


def test_a_cursor_is_opaque_and_checked() -> None:
    position = Position(123, 456)
    assert Position.decode(position.encode()) == position
    assert Position.decode(host_events.START.encode()) == host_events.START
    for bad in ("", "x", "!!!", "MTIz", "YS5i", "é" * 3, "A" * 100):
        with pytest.raises(ValueError):
            Position.decode(bad)
    # One cursor per position, and none past the columns' bigint.
    assert Position.decode(_raw(f"{2**63 - 1}.0")) == Position(2**63 - 1, 0)
    for raw in (f"{2**63}.1", f"1.{2**63}", "9" * 30 + ".0", "01.2", "1.02", "00.0", "1.2.3", "+1.2", "1.٣"):
        with pytest.raises(ValueError):
            Position.decode(_raw(raw))


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_unknown_types_and_actors_are_refused(db: Database, tenant: Tenant) -> None:
    with pytest.raises(ValueError):
        Actor("robot")
    async with db.writing() as session:
        with pytest.raises(ValueError):
            await host_events.emit(
                session, type="member.exploded", workspace_id=tenant.id, actor=OPERATOR, data={}
            )


async def test_an_event_committed_after_a_later_one_is_not_skipped(db: Database, tenant: Tenant) -> None:
    """Transaction A writes first (lower seq) but commits after B: a reader polling between the two
    commits must not pass A's position."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: seq order is commit order")
    a_wrote, b_committed = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        async with db.writing() as session:
            event_id = await host_events.emit(
                session, type=host_events.SEATS_PURCHASED, workspace_id=tenant.id, actor=OPERATOR, data={}
            )
            a_wrote.set()
            await asyncio.wait_for(b_committed.wait(), 10)
        return event_id

    start = await tail(db)
    task = asyncio.create_task(slow())
    await asyncio.wait_for(a_wrote.wait(), 10)
    b = await _emit(db, tenant, 2)
    # A reader that polls now, while A is still open, must not return B either: returning B would move
    # its cursor past A's seq. (A is let go only after the read: set before, it could commit first.)
    seen_while_open = await _read_now(db, tenant, start)
    b_committed.set()
    a = await task
    assert b not in seen_while_open
    seen = await _read_all(db, tenant, start)
    assert sorted(seen) == sorted([a, b]) and len(seen) == 2


async def test_events_past_the_retention_are_pruned_in_batches(db: Database, tenant: Tenant) -> None:
    start = await tail(db)
    written = [await _emit(db, tenant, n) for n in range(5)]
    old, kept = written[:3], written[3:]
    async with db.writing() as session:
        await session.execute(
            update(HostEvent).where(HostEvent.id.in_(old)).values(occurred_at=utcnow() - timedelta(days=31))
        )
        # A day short of the retention: kept.
        await session.execute(
            update(HostEvent).where(HostEvent.id == kept[0]).values(occurred_at=utcnow() - timedelta(days=29))
        )
    assert await host_events.prune_expired(db, 30, batch=2, pause_seconds=0) == 3
    assert await _read_all(db, tenant, start) == kept
    assert await host_events.prune_expired(db, 30, batch=2, pause_seconds=0) == 0
    assert await host_events.prune_expired(db, 28, pause_seconds=0) == 1
    assert await _read_all(db, tenant, start) == kept[1:]


async def test_a_prune_stops_after_its_batches(db: Database, tenant: Tenant) -> None:
    start = await tail(db)
    written = [await _emit(db, tenant, n) for n in range(5)]
    async with db.writing() as session:
        await session.execute(
            update(HostEvent)
            .where(HostEvent.id.in_(written))
            .values(occurred_at=utcnow() - timedelta(days=31))
        )
    assert await host_events.prune_expired(db, 30, batch=2, max_batches=1, pause_seconds=0) == 2
    assert len(remaining := await _read_all(db, tenant, start)) == 3 and set(remaining) < set(written)
    assert await host_events.prune_expired(db, 30, batch=2, max_batches=5, pause_seconds=0) == 3
    assert await _read_all(db, tenant, start) == []


async def test_a_restore_into_a_server_behind_the_events_is_refused_at_start(
    db: Database, tenant: Tenant
) -> None:
    """pg_dump/pg_restore (or logical replication) into another PostgreSQL server keeps the rows but not
    the transaction-id counter: new events would sort before those pollers have read, and be lost to them.
    Simulated, in a transaction rolled back, by an event whose txid is ahead of this server's counter."""
    async with db.reading() as session:
        await host_events.check_clock(session)  # what any database of this suite is
    if db.dialect != "postgresql":
        pytest.skip("txid is 0 on SQLite")
    async with db.writing() as session:
        current = (await session.execute(text("SELECT pg_current_xact_id()::text::bigint"))).scalar_one()
        await _emit_in(session, tenant)
        await session.execute(
            update(HostEvent).where(HostEvent.workspace_id == tenant.id).values(txid=current + 2**33)
        )
        with pytest.raises(host_events.EventClockBehind) as refused:
            await host_events.check_clock(session)
        await session.rollback()
    assert "pg_resetwal -e" in str(refused.value)
    assert f"-e {((current + 2**33) >> 32) + 1} " in str(refused.value)


async def _emit_in(session: Any, tenant: Tenant) -> None:
    await host_events.emit(
        session, type=host_events.SEATS_PURCHASED, workspace_id=tenant.id, actor=OPERATOR, data={}
    )
