"""The set-password link of an admin added by e-mail reaches the invited address itself, through the
outbox and a real SMTP server (aiosmtpd on 127.0.0.1), and the link it carries sets the password."""

from __future__ import annotations

import re
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import select

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage
from provisio.domain import admins as account_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.scim_methods import ScimMethod
from provisio.notify import invites, outbox
from provisio.notify.worker import OutboxWorker
from tests.notify.conftest import SmtpRecorder, eventually, running
from tests.oauth.helpers import PASSWORD, OAuthTenant, csrf_token, make_admin, make_oauth_tenant

ACTOR = "it@acme.example (console)"
pytestmark = pytest.mark.usefixtures("empty_outbox")


def _plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


async def _tenant(db: Database) -> OAuthTenant:
    return await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)


async def _invite(db: Database, settings: Settings, tenant: OAuthTenant, email: str) -> invites.Invited:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        return await invites.add_admin(session, settings, ws, email, actor=ACTOR)


async def test_the_link_is_mailed_to_the_invited_address_and_sets_the_password(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings, app: object
) -> None:
    tenant = await _tenant(db)
    grace = f"Grace-{tenant.key}@Acme.example"
    invited = await _invite(db, mail_settings, tenant, grace)
    assert invited.mailed and invited.shown_url

    async def scrubbed() -> bool:  # sent: the row keeps no usable link
        async with db.reading() as session:
            payloads = await session.scalars(
                select(OutboxMessage.payload).where(OutboxMessage.workspace_id == tenant.id)
            )
            return list(payloads) == [outbox.SCRUBBED]

    async with running(OutboxWorker(db, mail_settings)):
        await eventually(lambda: len(smtp.messages) == 1)
        await eventually(scrubbed)
    [message] = smtp.messages
    assert str(message["To"]) == grace
    assert message["Subject"] == f"You are an admin of {tenant.name}: choose your password"
    text = _plain(message)
    assert invited.shown_url in text and ACTOR in text and "72 hours" in text
    link = re.search(r"http://provisio\.test(/console/set-password/\S+)", text)
    assert link is not None
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://provisio.test") as browser:
        form = await browser.get(link.group(1))
        assert form.status_code == 200 and grace in form.text
        data = {"csrf_token": csrf_token(form.text), "password": PASSWORD, "confirmation": PASSWORD}
        assert (await browser.post(link.group(1), data=data)).status_code == 303
    async with db.reading() as session:
        stored = await account_service.stored_credentials(session, grace.lower())
    assert (await account_service.check_password(stored, PASSWORD))[0]


async def test_an_account_with_a_password_gets_no_mail(db: Database, settings: Settings) -> None:
    tenant = await _tenant(db)
    existing = await make_admin(db)
    invited = await _invite(db, settings, tenant, existing)
    assert not invited.mailed and invited.shown_url is None and invited.added.has_password
