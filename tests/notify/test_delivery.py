"""Delivery through a real SMTP server (aiosmtpd on 127.0.0.1): exactly once when all goes well, once
after refusals, after a worker died holding a lease, with two workers on one outbox, and after the
server was down; given up (dead) after the last attempt or a permanent refusal."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import utcnow
from provisio.metrics import MAILS_FAILED, MAILS_SENT
from provisio.notify import outbox
from provisio.notify.worker import OutboxWorker
from tests.notify.conftest import SmtpRecorder, eventually, fast, running
from tests.notify.helpers import all_sent, enqueue_many, message_ids, rows

pytestmark = pytest.mark.usefixtures("empty_outbox")


async def test_delivered_exactly_once(db: Database, smtp: SmtpRecorder, mail_settings: Settings) -> None:
    sent_before, failed_before = MAILS_SENT._value.get(), MAILS_FAILED._value.get()
    ids = await enqueue_many(db, 3, "once")
    worker = OutboxWorker(db, mail_settings)
    async with running(worker):
        await eventually(lambda: all_sent(db, ids))
        await asyncio.sleep(0.3)  # several more polls: nothing is sent again
    assert smtp.count_by_message_id() == {mid: 1 for mid in message_ids(mail_settings, ids)}
    assert MAILS_SENT._value.get() - sent_before == 3
    assert MAILS_FAILED._value.get() == failed_before

    first = next(m for m in smtp.messages if m["Message-ID"] == message_ids(mail_settings, ids)[0])
    assert first["Subject"] == "once 0"
    assert first["To"] == "once0@example.test"
    assert first["From"] == "provisio <noreply@provisio.test>"
    assert first["Auto-Submitted"] == "auto-generated"
    assert first.get_content_type() == "multipart/alternative"
    plain = first.get_body(("plain",))
    html = first.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "hello 0"
    assert html is not None and html.get_content().strip() == "<p>hello 0</p>"
    assert smtp.envelopes[0][0] == "noreply@provisio.test"

    stored = await rows(db, ids)
    for row in stored.values():
        assert row.sent_at is not None and row.attempts == 0
        assert (row.claimed_by, row.claimed_until, row.dead_at, row.last_error) == (None, None, None, None)


async def test_text_only_mail_is_one_part(db: Database, smtp: SmtpRecorder, mail_settings: Settings) -> None:
    ids = await enqueue_many(db, 1, "plain", html=False)
    await OutboxWorker(db, mail_settings).run_once()
    [message] = smtp.messages
    assert message.get_content_type() == "text/plain"
    assert message["Message-ID"] == message_ids(mail_settings, ids)[0]


async def test_a_refusing_server_gets_the_mail_once_it_accepts(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    failed_before = MAILS_FAILED._value.get()
    smtp.refuse = 3
    [row_id] = await enqueue_many(db, 1, "retry")
    worker = OutboxWorker(db, mail_settings)
    async with running(worker):
        await eventually(lambda: all_sent(db, [row_id]))
    assert smtp.refused == 3
    assert smtp.count_by_message_id() == {message_ids(mail_settings, [row_id])[0]: 1}
    row = (await rows(db, [row_id]))[row_id]
    assert row.attempts == 3 and row.dead_at is None and row.sent_at is not None
    assert (worker.sent, worker.failed) == (1, 3)
    assert MAILS_FAILED._value.get() - failed_before == 3


async def test_a_failed_attempt_waits_for_its_backoff(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    settings = fast(mail_settings, outbox_backoff_seconds=60.0, outbox_backoff_max_seconds=3600.0)
    smtp.refuse = 1
    [row_id] = await enqueue_many(db, 1, "backoff")
    worker = OutboxWorker(db, settings)
    before = utcnow()
    await worker.run_once()
    row = (await rows(db, [row_id]))[row_id]
    assert row.attempts == 1 and row.sent_at is None and row.claimed_by is None
    assert row.last_error is not None and "451" in row.last_error
    wait = (row.available_at - before).total_seconds()
    assert 48 - 1 <= wait <= 72 + 1
    await worker.run_once()  # not due yet
    assert smtp.refused == 1 and smtp.messages == []


async def test_a_worker_killed_after_claiming_leaves_the_mail_to_the_next(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    [row_id] = await enqueue_many(db, 1, "crash")
    # The first worker claims and dies before sending: its lease is all that remains of it.
    claimed = await outbox.claim_due(db, "crashed-worker", kinds=["mail"], limit=10, lease_seconds=3.0)
    assert [item.id for item in claimed] == [row_id]
    assert (await rows(db, [row_id]))[row_id].claimed_by == "crashed-worker"

    survivor = OutboxWorker(db, mail_settings)
    async with running(survivor):
        await asyncio.sleep(0.5)
        if utcnow() < claimed[0].claimed_until:  # (a machine slow enough may have passed it already)
            assert smtp.messages == []  # the lease still holds
        await eventually(lambda: all_sent(db, [row_id]))
    assert smtp.count_by_message_id() == {message_ids(mail_settings, [row_id])[0]: 1}
    row = (await rows(db, [row_id]))[row_id]
    assert row.attempts == 0 and row.claimed_by is None


async def test_a_short_lease_is_given_back_unsent(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    [row_id] = await enqueue_many(db, 1, "short")
    worker = OutboxWorker(db, mail_settings)
    # Claimed with less lease left than a send may take (the SMTP timeout, 2 s): given back unsent
    # rather than sent at the risk of another worker taking it over mid-send.
    [item] = await outbox.claim_due(db, worker.worker_id, kinds=["mail"], limit=1, lease_seconds=1.0)
    assert item.id == row_id

    async def the_short_claim(*args: object, **kwargs: object) -> list[outbox.Claimed]:
        return [item]

    with monkeypatch.context() as patch:
        patch.setattr(outbox, "claim_due", the_short_claim)
        assert await worker.run_once() == 1
    row = (await rows(db, [row_id]))[row_id]
    assert (row.claimed_by, row.claimed_until, row.sent_at, row.attempts) == (None, None, None, 0)
    assert smtp.messages == []
    await worker.run_once()  # due again at once, with a full lease
    assert smtp.count_by_message_id() == {message_ids(mail_settings, [row_id])[0]: 1}


async def test_two_workers_deliver_each_of_200_mails_once(
    database_url: str, db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    ids = await enqueue_many(db, 200, "pair")
    first_db, second_db = Database.from_url(database_url), Database.from_url(database_url)
    try:
        first = OutboxWorker(first_db, mail_settings, worker_id="first")
        second = OutboxWorker(second_db, mail_settings, worker_id="second")
        async with running(first, second):
            await eventually(lambda: all_sent(db, ids), within=120)
    finally:
        await first_db.dispose()
        await second_db.dispose()
    counts = smtp.count_by_message_id()
    assert counts == {mid: 1 for mid in message_ids(mail_settings, ids)}
    assert first.sent + second.sent == 200
    assert first.sent > 0 and second.sent > 0


async def test_nothing_is_lost_while_the_server_is_down(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    await smtp.stop()
    ids = await enqueue_many(db, 5, "down")
    worker = OutboxWorker(db, mail_settings)
    async with running(worker):
        await eventually(lambda: worker.failed >= 10)
        stored = await rows(db, ids)
        assert all(row.sent_at is None and row.dead_at is None for row in stored.values())
        assert all(row.last_error and "connection" in row.last_error.lower() for row in stored.values())
        await smtp.start()  # same port
        await eventually(lambda: all_sent(db, ids))
    assert smtp.count_by_message_id() == {mid: 1 for mid in message_ids(mail_settings, ids)}


async def test_given_up_after_the_last_attempt(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    settings = fast(mail_settings, outbox_max_attempts=3)
    smtp.refuse = 1_000
    [row_id] = await enqueue_many(db, 1, "dead")
    worker = OutboxWorker(db, settings)
    async with running(worker):
        await eventually(lambda: _dead(db, row_id))
        await asyncio.sleep(0.5)
    assert smtp.refused == 3 and smtp.messages == []
    row = (await rows(db, [row_id]))[row_id]
    assert row.attempts == 3 and row.sent_at is None and row.claimed_by is None
    assert row.last_error is not None and "451" in row.last_error
    # Kept for inspection.
    assert row.payload and row.dead_at is not None and row.dead_at <= utcnow()


async def test_a_permanent_refusal_is_given_up_at_once(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    smtp.refuse, smtp.refusal = 1, "554 5.6.0 Message refused"
    [row_id] = await enqueue_many(db, 1, "refused")
    await OutboxWorker(db, mail_settings).run_once()
    row = (await rows(db, [row_id]))[row_id]
    assert row.dead_at is not None and row.attempts == 1
    assert row.last_error is not None and "554" in row.last_error


async def test_a_payload_that_is_no_mail_is_given_up(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    async with db.writing() as session:
        row_id = await outbox.enqueue(session, kind="mail", payload={"subject": "no recipients"})
    assert row_id is not None
    await OutboxWorker(db, mail_settings).run_once()
    row = (await rows(db, [row_id]))[row_id]
    assert row.dead_at is not None and "payload" in (row.last_error or "")


async def test_a_row_is_claimed_by_one_worker_at_a_time(db: Database) -> None:
    ids = await enqueue_many(db, 3, "lease")
    taken = await outbox.claim_due(db, "a", kinds=["mail"], limit=2, lease_seconds=60)
    rest = await outbox.claim_due(db, "b", kinds=["mail"], limit=10, lease_seconds=60)
    assert len(taken) == 2 and len(rest) == 1
    assert {i.id for i in taken} | {i.id for i in rest} == set(ids)
    assert await outbox.claim_due(db, "c", kinds=["mail"], limit=10, lease_seconds=60) == []
    # Webhook rows wait for a worker that knows how to deliver them.
    assert await outbox.claim_due(db, "d", kinds=["webhook"], limit=10, lease_seconds=60) == []
    later = utcnow() + timedelta(seconds=61)
    again = await outbox.claim_due(db, "e", kinds=["mail"], limit=10, lease_seconds=60, now=later)
    assert {i.id for i in again} == set(ids)


async def test_a_mail_for_later_waits(db: Database, smtp: SmtpRecorder, mail_settings: Settings) -> None:
    async with db.writing() as session:
        row_id = await outbox.enqueue_mail(session, to=["x@example.test"], subject="s", text="t", html=None)
        later = await outbox.enqueue(
            session,
            kind="mail",
            payload={"to": ["y@example.test"], "subject": "s", "text": "t", "html": None},
            available_at=utcnow() + timedelta(hours=1),
        )
    await OutboxWorker(db, mail_settings).run_once()
    assert row_id is not None and later is not None
    assert smtp.count_by_message_id() == {message_ids(mail_settings, [row_id])[0]: 1}


async def _dead(db: Database, row_id: str) -> bool:
    return (await rows(db, [row_id]))[row_id].dead_at is not None
