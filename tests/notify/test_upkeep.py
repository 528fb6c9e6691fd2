"""The outbox's upkeep, on both databases: a worker busy with a slow SMTP server stays alive for /readyz,
one workspace's broken digest does not hold up the others', sent and given-up rows are pruned after the
retention (never pending ones), and the test e-mail goes where failure e-mails go."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select, update

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import Admin, HostEvent, NotificationState, OutboxMessage, utcnow
from provisio.domain import host_events
from provisio.domain import notifications as notification_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import CLI_ACTOR
from provisio.domain.scim_methods import ScimMethod
from provisio.notify import failures, outbox
from provisio.notify import worker as worker_module
from provisio.notify.checks import enqueue_test_mail
from provisio.notify.worker import OutboxWorker
from tests.conftest import make_tenant
from tests.domain.test_cli import cli, fails, ok
from tests.notify.conftest import SmtpRecorder, eventually, fast, running
from tests.notify.failure_helpers import T0, mails, note, per_user
from tests.notify.helpers import all_sent, enqueue_many, rows
from tests.oauth.helpers import OAuthTenant, make_admin, make_oauth_tenant
from tests.ops.apps import served

pytestmark = pytest.mark.usefixtures("empty_outbox")

HOUR = timedelta(hours=1)


# --- a slow SMTP server does not make a working worker look dead ----------------------------------------


class StallingSmtp(SmtpRecorder):
    """Accepts every message, but only after ``stall`` seconds each: an SMTP server that is slow, not down."""

    stall = 1.2

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.stall)
        return await super().handle_DATA(server, session, envelope)


async def test_readyz_stays_ok_while_the_worker_waits_on_a_slow_smtp_server(
    db: Database, settings: Settings
) -> None:
    smtp = StallingSmtp()
    await smtp.start()
    # Each send takes twice the heartbeat's maximum age: a worker that beat only between batches would be
    # reported dead for most of the batch.
    quick = fast(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_timeout_seconds=5.0,
        outbox_lease_seconds=60.0,
        outbox_heartbeat_max_age_seconds=0.6,
        outbox_worker=False,
    )
    try:
        ids = await enqueue_many(db, 3, "slow")
        worker = OutboxWorker(db, quick)
        async with served(quick) as (_app, client), running(worker):
            await eventually(lambda: _claimed(db, ids))
            checks: list[dict[str, Any]] = []
            while not smtp.messages or len(smtp.messages) < len(ids):
                response = await client.get("/readyz")
                checks.append(response.json()["checks"]["outbox"])
                assert response.status_code == 200, response.text
                await asyncio.sleep(0.1)
            await eventually(lambda: all_sent(db, ids))
        assert len(checks) > 20  # probed all through the ~3.6 s of sending
        assert all(check["last_heartbeat_age_seconds"] < 0.6 for check in checks)
    finally:
        await smtp.stop()


async def _claimed(db: Database, ids: list[str]) -> bool:
    return any(row.claimed_by for row in (await rows(db, ids)).values())


# --- one workspace's digest failing does not stop the others' -----------------------------------------


async def test_a_failing_digest_does_not_hold_up_the_other_workspaces(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)
    fine = await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)
    # The broken one's window ends first, so it is first on every pass.
    for tenant, start in ((broken, 0), (fine, 30)):
        await note(db, settings, per_user(tenant.id, "ada@other.example", start))
        await note(db, settings, per_user(tenant.id, "bob@other.example", start + 5))
    assert [len(await mails(db, t.id)) for t in (broken, fine)] == [1, 1]  # the prompts

    send_digest = failures._send_digest

    async def failing(session: Any, state: NotificationState, settings: Settings) -> bool:
        if state.workspace_id == broken.id:
            raise RuntimeError("the template cannot be rendered")
        return await send_digest(session, state, settings)

    monkeypatch.setattr(failures, "_send_digest", failing)
    await failures.flush_due_digests(db, settings, now=T0 + HOUR + timedelta(minutes=1))
    assert len(await mails(db, fine.id)) == 2, "the other workspace got its digest"
    assert len(await mails(db, broken.id)) == 1
    async with db.reading() as session:
        state = await session.get(NotificationState, broken.id)
        assert state is not None and state.pending == 1, "the broken one's window is kept for the next pass"

    # Once it can be built, the next pass sends it.
    monkeypatch.setattr(failures, "_send_digest", send_digest)
    await failures.flush_due_digests(db, settings, now=T0 + HOUR + timedelta(minutes=2))
    digest = (await mails(db, broken.id))[-1]
    assert len(await mails(db, broken.id)) == 2 and "bob@other.example" in digest.text


# --- retention -------------------------------------------------------------------------------------------


async def _age(db: Database, ids: list[str], **values: Any) -> None:
    async with db.writing() as session:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values))


async def _outbox_ids(db: Database) -> set[str]:
    async with db.reading() as session:
        return set(await session.scalars(select(OutboxMessage.id)))


async def test_prune_deletes_old_sent_and_dead_rows_in_batches_and_never_pending_ones(db: Database) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=8), now - timedelta(days=6)
    old_sent = await enqueue_many(db, 3, "old-sent")
    old_dead = await enqueue_many(db, 2, "old-dead")
    recent_sent = await enqueue_many(db, 1, "recent-sent")
    recent_dead = await enqueue_many(db, 1, "recent-dead")
    ancient_pending = await enqueue_many(db, 1, "pending")
    retried = await enqueue_many(db, 1, "retried")
    await _age(db, old_sent, sent_at=old)
    await _age(db, old_dead, dead_at=old, attempts=10)
    await _age(db, recent_sent, sent_at=recent)
    await _age(db, recent_dead, dead_at=recent)
    await _age(
        db, ancient_pending, created_at=now - timedelta(days=400), available_at=now - timedelta(days=400)
    )
    await _age(db, retried, created_at=old, available_at=now + HOUR, attempts=3)

    assert await outbox.prune(db, 7, batch=2, pause_seconds=0) == 5
    assert await _outbox_ids(db) == {*recent_sent, *recent_dead, *ancient_pending, *retried}
    assert await outbox.prune(db, 7, batch=2, pause_seconds=0) == 0
    assert await outbox.prune(db, 5, pause_seconds=0) == 2
    assert await _outbox_ids(db) == {*ancient_pending, *retried}


async def test_the_worker_prunes_when_it_starts_and_then_at_most_hourly(
    db: Database, settings: Settings, smtp: SmtpRecorder
) -> None:
    quick = fast(settings, smtp_host="127.0.0.1", smtp_port=smtp.port, outbox_retention_days=3)
    first = await enqueue_many(db, 2, "first")
    await _age(db, first, sent_at=utcnow() - timedelta(days=4))
    worker = OutboxWorker(db, quick)
    async with running(worker):
        await eventually(lambda: _gone(db, first))
        later = await enqueue_many(db, 1, "later")
        await eventually(lambda: all_sent(db, later))
        await _age(db, later, sent_at=utcnow() - timedelta(days=4))
        assert await worker.prune_if_due() == 0, "not again within the hour"
    assert set(later) <= await _outbox_ids(db)


async def _expired_events(db: Database) -> int:
    async with db.reading() as session:
        cutoff = utcnow() - timedelta(days=30)
        return int(await session.scalar(select(func.count()).where(HostEvent.occurred_at < cutoff)) or 0)


async def test_a_pruning_pass_is_bounded_and_the_rest_follows_soon(
    db: Database, settings: Settings, smtp: SmtpRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of expired host events is deleted a few batches per pass, with delivery in between,
    instead of in one pass that holds the worker's loop until it is done."""
    monkeypatch.setattr(host_events, "PRUNE_BATCH", 2)
    monkeypatch.setattr(worker_module, "PRUNE_MAX_BATCHES", 2)
    tenant = await make_tenant(db)
    async with db.writing() as session:
        for n in range(7):
            await host_events.emit(
                session,
                type=host_events.SEATS_PURCHASED,
                workspace_id=tenant.id,
                actor=CLI_ACTOR,
                data={"n": n},
            )
        await session.execute(
            update(HostEvent)
            .where(HostEvent.workspace_id == tenant.id)
            .values(occurred_at=utcnow() - timedelta(days=31))
        )
    before = await _expired_events(db)
    monkeypatch.setattr(worker_module, "PRUNE_CATCH_UP_SECONDS", 0.0)
    worker = OutboxWorker(db, fast(settings, smtp_host="127.0.0.1", smtp_port=smtp.port))
    await worker.prune_if_due()
    assert await _expired_events(db) == before - 4
    await worker.prune_if_due()  # due again at once: the pass before found more than it could delete
    assert await _expired_events(db) == max(before - 8, 0)


async def _gone(db: Database, ids: list[str]) -> bool:
    return not await rows(db, ids)


async def test_the_worker_prunes_host_events_past_their_retention(
    db: Database, settings: Settings, smtp: SmtpRecorder
) -> None:
    tenant = await make_tenant(db)  # its setup is two events: an initial purchase, SCIM turned on
    async with db.writing() as session:
        await session.execute(
            update(HostEvent)
            .where(HostEvent.workspace_id == tenant.id)
            .values(occurred_at=utcnow() - timedelta(days=11))
        )
    assert await _host_events(db, tenant.id) == 2
    quick = fast(settings, smtp_host="127.0.0.1", smtp_port=smtp.port, event_retention_days=10)
    async with running(OutboxWorker(db, quick)):
        await eventually(lambda: _no_host_events(db, tenant.id))


async def _host_events(db: Database, workspace_id: str) -> int:
    async with db.reading() as session:
        return int(
            await session.scalar(select(func.count()).where(HostEvent.workspace_id == workspace_id)) or 0
        )


async def _no_host_events(db: Database, workspace_id: str) -> bool:
    return await _host_events(db, workspace_id) == 0


async def test_log_prune_prunes_the_outbox_too(database_url: str, db: Database) -> None:
    old = await enqueue_many(db, 2, "cli")
    kept = await enqueue_many(db, 1, "cli-kept")
    await _age(db, old, dead_at=utcnow() - timedelta(days=9))
    await _age(db, kept, dead_at=utcnow() - timedelta(days=2))
    result = await asyncio.to_thread(cli, database_url, "log-prune", "--outbox-days", "3", "--json")
    pruned = ok(result)
    assert pruned["outbox_deleted"] == 2 and pruned["outbox_retention_days"] == 3
    assert await _outbox_ids(db) == set(kept)
    default = ok(await asyncio.to_thread(cli, database_url, "log-prune", "--json"))
    assert default["outbox_retention_days"] == 7 and default["outbox_deleted"] == 0


# --- the test e-mail goes where failure e-mails go ------------------------------------------------------


@pytest.fixture
async def tenant(db: Database) -> OAuthTenant:
    return await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)


async def _outbox_count(db: Database, workspace_id: str) -> int:
    async with db.reading() as session:
        query = select(func.count()).where(OutboxMessage.workspace_id == workspace_id)
        return int(await session.scalar(query) or 0)


async def test_the_test_mail_goes_to_the_failure_mail_recipients(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    opted_out = await make_admin(db, tenant.key)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await notification_service.add_recipient(session, ws, "oncall@acme.example", added_by="test")
        await notification_service.opt_out(session, tenant.id, opted_out.upper())
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        sent = await enqueue_test_mail(session, ws, settings)
        expected = await notification_service.recipients(session, tenant.id)
    assert sent.recipients == expected == [tenant.admin_email, "oncall@acme.example"]
    (row,) = (await rows(db, [sent.outbox_id])).values()
    assert '"oncall@acme.example"' in row.payload and opted_out not in row.payload

    async with db.writing() as session:
        await notification_service.opt_out(session, tenant.id, tenant.admin_email)
        await notification_service.opt_out(session, tenant.id, "oncall@acme.example")
    with pytest.raises(DomainError) as nobody:
        async with db.writing() as session:
            await enqueue_test_mail(
                session, await workspace_service.require_workspace(session, tenant.key), settings
            )
    assert nobody.value.kind is Kind.NOT_FOUND and "opted out" in nobody.value.detail


async def test_an_address_the_outbox_refuses_is_an_invalid_error(
    database_url: str, db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    async with db.writing() as session:
        await session.execute(
            update(Admin).where(Admin.email == tenant.admin_email).values(email="ada,eve@acme.example")
        )
    before = await _outbox_count(db, tenant.id)
    with pytest.raises(DomainError) as refused:
        async with db.writing() as session:
            await enqueue_test_mail(
                session, await workspace_service.require_workspace(session, tenant.key), settings
            )
    assert refused.value.kind is Kind.INVALID and "ada,eve@acme.example" in refused.value.detail

    # The CLI answers it as an error, not a traceback.
    result = await asyncio.to_thread(cli, database_url, "notify", "test", tenant.key, "--json")
    assert "ada,eve@acme.example" in fails(result, "invalid")
    assert "Traceback" not in result.stderr
    plain = await asyncio.to_thread(cli, database_url, "notify", "test", tenant.key)
    assert plain.returncode == 1 and plain.stderr.startswith("error: Cannot send the test e-mail")
    assert await _outbox_count(db, tenant.id) == before
