"""Enqueueing: in the caller's transaction (a rollback takes the notification away), deduplicated by key,
refusing input that would break the message; and the backoff between attempts."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from provisio.db.engine import Database
from provisio.db.models import OutboxMessage
from provisio.notify.outbox import backoff_seconds, enqueue, enqueue_mail
from tests.conftest import Tenant
from tests.notify.helpers import rows

pytestmark = pytest.mark.usefixtures("empty_outbox")


class Boom(Exception):
    pass


async def count(db: Database) -> int:
    async with db.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def test_the_enqueue_rolls_back_with_its_transaction(db: Database) -> None:
    with pytest.raises(Boom):
        async with db.writing() as session:
            row_id = await enqueue_mail(
                session, to=["ada@example.test"], subject="Hi", text="hello", html=None
            )
            assert row_id is not None
            raise Boom
    assert await count(db) == 0

    async with db.writing() as session:
        row_id = await enqueue_mail(session, to=["ada@example.test"], subject="Hi", text="hello", html=None)
    assert row_id is not None
    stored = (await rows(db, [row_id]))[row_id]
    assert stored.kind == "mail"
    assert orjson.loads(stored.payload) == {
        "to": ["ada@example.test"],
        "subject": "Hi",
        "text": "hello",
        "html": None,
    }
    assert (stored.attempts, stored.sent_at, stored.dead_at, stored.claimed_by) == (0, None, None, None)
    assert stored.available_at == stored.created_at


async def test_a_dedupe_key_enqueues_once(db: Database, tenant: Tenant) -> None:
    async with db.writing() as session:
        first = await enqueue_mail(
            session,
            to=["ada@example.test"],
            subject="Sync failed",
            text="x",
            html="<p>x</p>",
            workspace_id=tenant.id,
            dedupe_key=f"sync-failed:{tenant.id}:1",
        )
        again = await enqueue_mail(
            session,
            to=["ada@example.test"],
            subject="Sync failed",
            text="x",
            html="<p>x</p>",
            workspace_id=tenant.id,
            dedupe_key=f"sync-failed:{tenant.id}:1",
        )
    assert first is not None and again is None
    # In a later transaction too, and without a key nothing is deduplicated.
    async with db.writing() as session:
        assert (
            await enqueue(session, kind="mail", payload={}, dedupe_key=f"sync-failed:{tenant.id}:1") is None
        )
        assert await enqueue(session, kind="mail", payload={"to": []}) is not None
        assert await enqueue(session, kind="mail", payload={"to": []}) is not None
    assert await count(db) == 3
    assert (await rows(db, [first]))[first].workspace_id == tenant.id


async def test_refused_input(db: Database) -> None:
    async with db.writing() as session:
        # Nobody to tell: nothing is enqueued.
        assert await enqueue_mail(session, to=[" "], subject="s", text="t", html=None) is None
        for to, subject in [
            (["ada@example.test\r\nBcc: eve@example.test"], "s"),
            (["ada@example.test"], "Hi\nBcc: eve@example.test"),
            (["ada@example.test, eve@example.test"], "s"),
            (["not an address"], "s"),
        ]:
            with pytest.raises(ValueError):
                await enqueue_mail(session, to=to, subject=subject, text="t", html=None)
        with pytest.raises(ValueError):
            await enqueue(session, kind="fax", payload={})
    assert await count(db) == 0


async def test_the_workspace_s_notifications_go_with_it(db: Database, tenant: Tenant) -> None:
    from provisio.db.models import Workspace

    async with db.writing() as session:
        row_id = await enqueue_mail(
            session, to=["ada@example.test"], subject="s", text="t", html=None, workspace_id=tenant.id
        )
    async with db.writing() as session:
        await session.delete(await session.get(Workspace, tenant.id))
    assert row_id is not None and await rows(db, [row_id]) == {}


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    middle = [backoff_seconds(n, base=30, cap=3600, jitter=lambda: 0.5) for n in range(1, 10)]
    assert middle == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_seconds(1, base=30, cap=3600, jitter=lambda: 0.0) == pytest.approx(24)
    assert backoff_seconds(1, base=30, cap=3600, jitter=lambda: 1.0) == pytest.approx(36)
    assert backoff_seconds(30, base=30, cap=3600, jitter=lambda: 1.0) == pytest.approx(4320)
    spread = {backoff_seconds(3, base=30, cap=3600) for _ in range(50)}
    assert len(spread) > 1 and all(96 <= s <= 144 for s in spread)
