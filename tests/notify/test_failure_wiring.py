"""The SCIM API's failures reach the failure e-mails: the refusal an IdP gets is logged and, in the same
transaction, mailed to the workspace's admins (or counted into the digest)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import NotificationState, OutboxMessage, ProvisioningEvent, ScimToken, utcnow
from provisio.domain import admins as admin_service
from provisio.domain import tokens as token_service
from provisio.domain import workspaces as workspace_service
from provisio.notify.failures import flush_due_digests
from provisio.notify.worker import OutboxWorker
from tests.conftest import Tenant, make_tenant
from tests.notify.conftest import SmtpRecorder, eventually, running

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _user(name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name, "emails": [{"value": name, "primary": True}]}


async def _with_admin(db: Database, tenant: Tenant) -> str:
    email = f"it-{uuid.uuid4().hex[:8]}@admins.example"
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        admin = await admin_service.create_admin(session, email, "a long enough password")
        await admin_service.grant_workspace(session, admin, ws)
    return email


async def _mails(db: Database, workspace_id: str) -> list[dict[str, Any]]:
    async with db.reading() as session:
        rows = await session.scalars(
            select(OutboxMessage.payload)
            .where(OutboxMessage.workspace_id == workspace_id, OutboxMessage.kind == "mail")
            .order_by(OutboxMessage.created_at)
        )
        return [orjson.loads(payload) for payload in rows]


async def _failures(db: Database, workspace_id: str) -> int:
    async with db.reading() as session:
        rows = await session.scalars(
            select(ProvisioningEvent.repeats).where(
                ProvisioningEvent.workspace_id == workspace_id, ProvisioningEvent.outcome == "failure"
            )
        )
        return sum(rows)


async def test_a_refused_create_is_mailed_once_then_counted(client: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_tenant(db, "Full", seats=0)
    admin = await _with_admin(db, tenant)
    headers = {**tenant.headers, "Content-Type": SCIM}

    for name in ("ada", "bob", "cyd"):
        response = await client.post(
            f"{tenant.base}/Users", json=_user(f"{name}@{tenant.key}.test"), headers=headers
        )
        assert response.status_code == 403, response.text

    assert await _failures(db, tenant.id) == 3
    mails = await _mails(db, tenant.id)
    assert len(mails) == 1, mails  # the first is mailed at once; the others wait for the digest
    assert mails[0]["to"] == [admin]
    assert tenant.name in mails[0]["subject"]
    assert "seat" in mails[0]["text"].lower()


async def test_a_request_that_mails_nobody_keeps_the_one_statement_log(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant = await make_tenant(db, "Quiet")
    await _with_admin(db, tenant)
    missing = await client.get(f"{tenant.base}/Users/{uuid.uuid4()}", headers=tenant.headers)
    assert missing.status_code == 404
    assert await _failures(db, tenant.id) == 1
    assert await _mails(db, tenant.id) == []


async def test_guessed_tokens_mail_nobody(client: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_tenant(db, "Probed")
    await _with_admin(db, tenant)
    for _ in range(50):
        token = uuid.uuid4().hex
        response = await client.get(f"{tenant.base}/Users", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    async with db.reading() as session:
        rows = list(
            (
                await session.scalars(
                    select(ProvisioningEvent).where(ProvisioningEvent.workspace_id == tenant.id)
                )
            ).all()
        )
        outbox = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.workspace_id == tenant.id)
        )
        state = await session.get(NotificationState, tenant.id)
    assert outbox == 0
    assert state is None  # not even the notification state was written
    # One aggregated row (two if the flood straddles a minute) counts them all.
    assert 1 <= len(rows) <= 2 and sum(e.repeats for e in rows) == 50


async def test_a_revoked_token_is_mailed_once_and_noted_once_a_minute(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant = await make_tenant(db, "Revoked")
    admin = await _with_admin(db, tenant)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        token = await session.scalar(select(ScimToken).where(ScimToken.workspace_id == tenant.id))
        assert token is not None
        assert await token_service.revoke_token(session, ws, token.id)
    for _ in range(50):
        response = await client.get(f"{tenant.base}/Users", headers=tenant.headers)
        assert response.status_code == 401
    mails = await _mails(db, tenant.id)
    assert len(mails) == 1 and mails[0]["to"] == [admin]
    assert await _failures(db, tenant.id) == 50
    async with db.reading() as session:
        state = await session.get(NotificationState, tenant.id)
    # Noted once: the other 49 are on the aggregated row, not each a write into the digest.
    assert state is not None and state.pending == 0


async def test_from_the_idps_refusal_to_the_admins_mailbox(
    client: httpx.AsyncClient, db: Database, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    """The whole way over real parts: the SCIM API refuses creates (no free seat), the outbox worker
    sends one prompt mail over SMTP at once, and the digest of the window lists what followed."""
    tenant = await make_tenant(db, "Mailbox", seats=0)
    admin = await _with_admin(db, tenant)
    headers = {**tenant.headers, "Content-Type": SCIM}
    async with running(OutboxWorker(db, mail_settings)):
        first = await client.post(
            f"{tenant.base}/Users", json=_user(f"ada@{tenant.key}.test"), headers=headers
        )
        assert first.status_code == 403
        await eventually(lambda: len(smtp.messages) == 1)
        for name in ("bob", "cyd"):
            again = await client.post(
                f"{tenant.base}/Users", json=_user(f"{name}@{tenant.key}.test"), headers=headers
            )
            assert again.status_code == 403
        await asyncio.sleep(0.3)  # several worker passes: what follows waits for the digest
        assert len(smtp.messages) == 1
        # The window ends (an hour later): its digest goes out once, however often the worker looks.
        assert await flush_due_digests(db, mail_settings, now=utcnow() + timedelta(hours=1, seconds=1)) == 1
        await eventually(lambda: len(smtp.messages) == 2)
        await asyncio.sleep(0.3)
    prompt, digest = smtp.messages
    assert str(prompt["To"]) == admin == str(digest["To"])
    assert "provisioning blocked" in str(prompt["Subject"]) and tenant.name in str(prompt["Subject"])
    assert tenant.name in str(digest["Subject"])
    assert all(count == 1 for count in smtp.count_by_message_id().values())
