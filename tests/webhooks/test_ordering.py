"""Ordered outbox rows: one due row per ordering key, the next due when it is sent or given up, a failing
head holding up only its key, e-mail unaffected; and on PostgreSQL an enqueue racing the head's
completion never leaves a key without a head."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from provisio.db.engine import Database
from provisio.db.models import OutboxMessage, utcnow
from provisio.notify import outbox
from provisio.notify.outbox import Ordered
from provisio.notify.worker import outbox_health
from tests.notify.conftest import empty_outbox, eventually
from tests.notify.helpers import enqueue_many

pytestmark = pytest.mark.usefixtures("empty_outbox")
__all__ = ["empty_outbox"]


async def _enqueue(db: Database, *keys: str) -> None:
    async with db.writing() as session:
        rows = [Ordered(ordering_key=key, payload={"n": n}) for n, key in enumerate(keys)]
        assert await outbox.enqueue_ordered(session, kind=outbox.WEBHOOK, rows=rows) == len(keys)


async def _claim(
    db: Database, worker: str = "w", kinds: tuple[str, ...] = (outbox.WEBHOOK,)
) -> list[outbox.Claimed]:
    return await outbox.claim_due(db, worker, kinds=kinds, limit=50, lease_seconds=60)


def _ns(items: list[outbox.Claimed]) -> list[tuple[str | None, int]]:
    return sorted((item.ordering_key, item.payload["n"]) for item in items)


async def test_one_due_row_per_key_in_order(db: Database) -> None:
    await _enqueue(db, "a", "b", "a", "a", "b")
    first = await _claim(db)
    assert _ns(first) == [("a", 0), ("b", 1)]
    assert await _claim(db) == []  # the heads are in flight: nothing else of their keys is due

    a, b = sorted(first, key=lambda i: str(i.ordering_key))
    await outbox.mark_sent(db, a.id, ordering_key=a.ordering_key)
    assert _ns(await _claim(db)) == [("a", 2)]

    # A failure with a retry keeps its place: its key waits, the others go on.
    assert not await outbox.mark_failed(
        db, b, "w", "HTTP 500", permanent=False, max_attempts=5, backoff_base=60, backoff_cap=60
    )
    assert await _claim(db) == []
    await _enqueue(db, "c")
    assert _ns(await _claim(db)) == [("c", 0)]

    # Given up, the next of its key is due at once.
    async with db.writing() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == b.id).values(available_at=utcnow())
        )
    [b_again] = await _claim(db)
    assert b_again.id == b.id and b_again.attempts == 1
    assert await outbox.mark_failed(
        db, b_again, "w", "HTTP 500", permanent=True, max_attempts=5, backoff_base=60, backoff_cap=60
    )
    assert _ns(await _claim(db)) == [("b", 4)]


async def test_email_is_claimed_as_before_beside_waiting_rows(db: Database) -> None:
    await _enqueue(db, *(["k"] * 30))
    mails = await enqueue_many(db, 3, "beside")
    claimed = await _claim(db, kinds=(outbox.MAIL, outbox.WEBHOOK))
    assert sorted(item.id for item in claimed if item.kind == outbox.MAIL) == sorted(mails)
    assert _ns([item for item in claimed if item.kind == outbox.WEBHOOK]) == [("k", 0)]
    async with db.reading() as session:
        waiting = await session.scalars(
            select(OutboxMessage.available_at).where(OutboxMessage.kind == "webhook")
        )
        assert sorted(waiting.all())[1:] == [outbox.WAITING] * 29


async def test_giving_up_a_prefix_and_repairing_a_key_without_a_head(db: Database) -> None:
    await _enqueue(db, "we_1|x", "we_1|x", "we_1|y", "we_10|x", "we_2|x")
    async with db.writing() as session:
        assert await outbox.give_up_ordered(session, "we_1|", "endpoint disabled", now=utcnow()) == 3
    assert _ns(await _claim(db)) == [("we_10|x", 3), ("we_2|x", 4)]

    await _enqueue(db, "z", "z", "z")
    [head] = [item for item in await _claim(db) if item.ordering_key == "z"]
    # Sent without its successor being made due (what no code path does): the repair finds the key.
    async with db.writing() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == head.id).values(sent_at=utcnow())
        )
    assert await _claim(db) == []
    assert await outbox.repair_orphans(db) == 1
    assert _ns(await _claim(db)) == [("z", 1)]
    assert await outbox.repair_orphans(db) == 0


async def _someone_waits_for_a_lock(db: Database) -> bool:
    async with db.reading() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


@pytest.mark.parametrize("completion_first", [False, True], ids=["enqueue-first", "completion-first"])
async def test_an_enqueue_racing_the_heads_completion_leaves_a_head(
    database_url: str, db: Database, completion_first: bool
) -> None:
    """Whichever of the two transactions locks first, the other waits for it, and the row enqueued
    behind the head is due once both have committed."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: an enqueue and a completion never overlap")
    key = f"race-{completion_first}"
    await _enqueue(db, key)
    [head] = [item for item in await _claim(db) if item.ordering_key == key]
    first_done, blocked = asyncio.Event(), asyncio.Event()
    other = Database.from_url(database_url)

    async def enqueue_behind() -> None:
        async with other.writing() as session:
            if completion_first:
                await asyncio.wait_for(first_done.wait(), 10)
            row = Ordered(ordering_key=key, payload={"n": 1})
            await outbox.enqueue_ordered(session, kind=outbox.WEBHOOK, rows=[row])
            if not completion_first:
                first_done.set()
                await asyncio.wait_for(blocked.wait(), 10)  # commits once the completion waits for it

    async def complete_head() -> None:
        async with db.writing() as session:
            if not completion_first:
                await asyncio.wait_for(first_done.wait(), 10)
            await outbox.mark_sent_in(session, head.id, now=utcnow(), ordering_key=key)
            if completion_first:
                first_done.set()
                await asyncio.wait_for(blocked.wait(), 10)  # commits once the enqueue waits for it

    try:
        tasks = [asyncio.create_task(enqueue_behind()), asyncio.create_task(complete_head())]
        await asyncio.wait_for(first_done.wait(), 10)
        await eventually(lambda: _someone_waits_for_a_lock(db), within=10)
        blocked.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
    finally:
        await other.dispose()
    [follower] = [item for item in await _claim(db) if item.ordering_key == key]
    assert follower.payload == {"n": 1}


async def test_a_stale_lease_of_a_head_makes_it_due_again(db: Database) -> None:
    await _enqueue(db, "lease", "lease")
    [head] = await outbox.claim_due(db, "dead-worker", kinds=[outbox.WEBHOOK], limit=5, lease_seconds=0.01)
    later = utcnow() + timedelta(seconds=1)
    again = await outbox.claim_due(
        db, "survivor", kinds=[outbox.WEBHOOK], limit=5, lease_seconds=60, now=later
    )
    assert [item.id for item in again] == [head.id]


async def test_webhook_rows_never_make_the_outbox_look_stuck(db: Database) -> None:
    """A receiver that is down is its owner's problem: /readyz's outbox check counts e-mail only."""
    await _enqueue(db, "down", "down")
    async with db.writing() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.kind == outbox.WEBHOOK, OutboxMessage.available_at != outbox.WAITING)
            .values(available_at=utcnow() - timedelta(hours=2))
        )
    health = await outbox_health(db)
    assert (health["depth"], health["due"], health["oldest_due_age_seconds"]) == (0, 0, None)
    await enqueue_many(db, 1, "counted")
    assert (await outbox_health(db))["depth"] == 1
