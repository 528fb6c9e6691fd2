"""``provisio serve`` runs the worker in its lifespan (unless PROVISIO_OUTBOX_WORKER=false), woken by a
commit that enqueued instead of waiting for its next poll; and on PostgreSQL a claim skips rows another
claim holds instead of waiting for them."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage
from provisio.notify import outbox
from provisio.notify.worker import outbox_health
from tests.notify.conftest import SmtpRecorder, eventually, fast
from tests.notify.helpers import all_sent, enqueue_many

pytestmark = pytest.mark.usefixtures("empty_outbox")


async def test_the_server_runs_the_worker_and_an_enqueue_wakes_it(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    # Polls only every minute: a prompt delivery is the wake-up's doing.
    settings = fast(mail_settings, outbox_worker=True, outbox_poll_seconds=60.0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await eventually(lambda: _has_heartbeat(db))
        await asyncio.sleep(0.2)  # the worker is asleep now, waiting for its next poll
        started = time.monotonic()
        ids = await enqueue_many(db, 1, "served")
        await eventually(lambda: all_sent(db, ids), within=10)
        assert time.monotonic() - started < 10
    assert len(smtp.messages) == 1
    # Stopped with the server: nothing is sent after it.
    later = await enqueue_many(db, 1, "after")
    await asyncio.sleep(0.3)
    assert not await all_sent(db, later)


async def test_the_worker_can_be_left_to_a_process_of_its_own(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    app = create_app(fast(mail_settings, outbox_worker=False))
    async with app.router.lifespan_context(app):
        ids = await enqueue_many(db, 1, "apart")
        await asyncio.sleep(0.5)
        assert not await all_sent(db, ids)
        assert (await outbox_health(db))["last_heartbeat_age_seconds"] is None
    assert smtp.messages == []


async def test_postgresql_claims_skip_rows_locked_by_another_claim(database_url: str, db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: claims never overlap there")
    ids = await enqueue_many(db, 4, "skip")
    other = Database.from_url(database_url)
    try:
        async with other.writing() as holding:
            # Another worker's claim in flight: it has locked two rows and not yet committed.
            locked = (
                await holding.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.id.in_(ids[:2]))
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            ).all()
            assert sorted(locked) == sorted(ids[:2])
            claimed = await asyncio.wait_for(
                outbox.claim_due(db, "skipper", kinds=["mail"], limit=10, lease_seconds=60), 5
            )
            assert sorted(item.id for item in claimed) == sorted(ids[2:])
    finally:
        await other.dispose()


async def _has_heartbeat(db: Database) -> bool:
    return (await outbox_health(db))["last_heartbeat_age_seconds"] is not None
