"""Failure e-mails end to end: refusals made by the real membership rules, noted as the SCIM API's failure
log would note them, delivered by the outbox worker to a real SMTP server (aiosmtpd on 127.0.0.1), and
an unsubscribe link followed over HTTP without signing in."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import utcnow
from provisio.domain import members as member_service
from provisio.domain import notifications as notification_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Reason
from provisio.domain.host_events import CLI_ACTOR
from provisio.domain.scim_methods import ScimMethod
from provisio.notify.failures import Failure, failure_from_error, flush_due_digests
from provisio.notify.worker import OutboxWorker
from provisio.scim.responses import from_domain
from tests.notify.conftest import SmtpRecorder, eventually, running
from tests.notify.failure_helpers import note
from tests.oauth.helpers import OAuthTenant, csrf_token, make_oauth_tenant

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
# Failures happen now, so that the windows they open end an hour from now: the worker's own passes
# (which flush digests by the real clock) leave them alone until the test's flush moves the clock on.
T0 = utcnow()
HOSTILE = '<img src=x onerror="alert(1)">@evil.example'


def _doc(user_name: str) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": user_name,
        "emails": [{"value": user_name, "primary": True}],
        "active": True,
    }


async def _refused(db: Database, tenant: OAuthTenant, user_name: str, seconds: float) -> Failure:
    """Create ``user_name`` as an identity provider would; the failure the refusal is logged as."""
    try:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, tenant.key)
            await member_service.create_member(
                session, ws, _doc(user_name), actor="Okta (test)", by=CLI_ACTOR
            )
    except DomainError as exc:
        error = from_domain(exc)
        return failure_from_error(
            tenant.id, "create", error, user_name=user_name, at=T0 + timedelta(seconds=seconds)
        )
    raise AssertionError(f"{user_name} was created")


def _parts(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    return str(plain.get_content()), str(html.get_content())  # type: ignore[attr-defined]


async def test_blocking_and_per_user_failures_reach_every_recipient_once(
    db: Database, settings: Settings, smtp: SmtpRecorder, mail_settings: Settings
) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False, seats=0)
    domain = tenant.admin_email.split("@")[1]
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await notification_service.add_recipient(session, ws, "helpdesk@acme.example", added_by="test")

    no_seat = await _refused(db, tenant, f"ada@{domain}", 0)
    assert no_seat.reason_code == Reason.NO_FREE_SEAT and no_seat.status == 403
    async with db.writing() as session:  # now only the verified domain is accepted
        ws = await workspace_service.require_workspace(session, tenant.key)
        ws.allow_other_domains = False
    outside = await _refused(db, tenant, "bob@elsewhere.example", 1)
    assert outside.reason_code == Reason.DOMAIN_NOT_VERIFIED and outside.scim_type == "invalidValue"
    hostile = await _refused(db, tenant, HOSTILE, 2)

    worker = OutboxWorker(db, mail_settings)
    async with running(worker):
        for failure in (no_seat, outside, hostile, outside):
            await note(db, mail_settings, failure)
        await eventually(lambda: len(smtp.messages) == 2)
        prompts = {str(m["To"]): m for m in smtp.messages}
        assert set(prompts) == {tenant.admin_email, "helpdesk@acme.example"}
        for message in prompts.values():
            assert message["Subject"] == (
                f"{tenant.name}: provisioning blocked, 1 request refused "
                "(no free seat, and license auto-charge is off)"
            )
            assert message.get_content_type() == "multipart/alternative"

        assert await flush_due_digests(db, mail_settings, now=T0 + timedelta(hours=1)) >= 1
        await eventually(lambda: len(smtp.messages) == 4)
        await asyncio.sleep(0.3)  # more polls, more flushes: nothing is sent again
        await flush_due_digests(db, mail_settings, now=T0 + timedelta(hours=1, seconds=10))
        await asyncio.sleep(0.3)
    assert len(smtp.messages) == 4
    assert all(n == 1 for n in smtp.count_by_message_id().values())

    digests = smtp.messages[2:]
    assert sorted(str(m["To"]) for m in digests) == sorted(prompts)
    text, html = _parts(digests[0])
    assert digests[0]["Subject"] == f"{tenant.name}: 2 users failed to provision"
    assert "bob@elsewhere.example: the e-mail domain is not a verified domain (2 times)" in text
    assert HOSTILE in text
    assert "<img" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;@evil.example" in html
    assert f"/console/workspaces/{tenant.key}/log?outcome=failure&from=" in text


async def test_an_unsubscribed_recipient_gets_no_more_mail(
    db: Database, smtp: SmtpRecorder, mail_settings: Settings, app: object
) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await notification_service.add_recipient(session, ws, "helpdesk@acme.example", added_by="test")
    refused = Failure(tenant.id, "create", 401, None, "Authentication required.", None, None, T0)
    worker = OutboxWorker(db, mail_settings)
    async with running(worker):
        await note(db, mail_settings, refused)
        await eventually(lambda: len(smtp.messages) == 2)
    mail = next(m for m in smtp.messages if m["To"] == "helpdesk@acme.example")
    text, html = _parts(mail)
    link = re.search(r"http://provisio\.test(/console/notifications/unsubscribe/\S+)", text)
    assert link is not None and link.group(1) in html

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://provisio.test") as browser:
        page = await browser.get(link.group(1))  # no sign-in
        assert page.status_code == 200 and "helpdesk@acme.example" in page.text
        done = await browser.post(link.group(1), data={"csrf_token": csrf_token(page.text)})
        assert done.status_code == 303
        confirmed = await browser.get(done.headers["location"])
        assert "Unsubscribed" in confirmed.text
        forged = await browser.post(link.group(1)[:-3] + "abc", data={"csrf_token": csrf_token(page.text)})
        assert forged.status_code == 404
        no_token = await browser.post(link.group(1), data={})
        assert no_token.status_code == 403

    async with running(OutboxWorker(db, mail_settings)):
        # The next run of failures, after a quiet window.
        await flush_due_digests(db, mail_settings, now=T0 + timedelta(hours=2))
        await note(
            db,
            mail_settings,
            Failure(tenant.id, "create", 401, None, "x", None, None, T0 + timedelta(hours=3)),
        )
        await eventually(lambda: len(smtp.messages) == 3)
        await asyncio.sleep(0.3)
    assert [str(m["To"]) for m in smtp.messages[2:]] == [tenant.admin_email]
