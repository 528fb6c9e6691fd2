"""Failure e-mails, on both databases: which failures are mailed, when, to whom, and never twice."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import Admin, NotificationDigestEntry, NotificationState
from provisio.domain import notifications as notification_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import Reason
from provisio.domain.scim_methods import ScimMethod
from provisio.notify import failures
from provisio.notify.failures import Failure, Severity, classify, flush_due_digests
from tests.notify.failure_helpers import T0, mails, no_seat, note, per_user
from tests.oauth.helpers import OAuthTenant, make_admin, make_oauth_tenant

HOUR = timedelta(seconds=3600)


@pytest.fixture
async def tenant(db: Database) -> OAuthTenant:
    return await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)


async def _flush(db: Database, settings: Settings, at: timedelta) -> int:
    return await flush_due_digests(db, settings, now=T0 + at)


async def _state(db: Database, workspace_id: str) -> NotificationState:
    async with db.reading() as session:
        state = await session.get(NotificationState, workspace_id)
        assert state is not None
        return state


# --- classification ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "scim_type", "reason", "operation", "expected"),
    [
        (403, None, Reason.NO_FREE_SEAT, "create", (Severity.BLOCKING, "no_free_seat")),
        (403, None, Reason.AUTO_CHARGE_MAXIMUM, "deactivate", (Severity.BLOCKING, "auto_charge_maximum")),
        (400, "invalidValue", Reason.NO_VERIFIED_DOMAIN, "create", (Severity.BLOCKING, "no_verified_domain")),
        (401, None, None, "list", (Severity.BLOCKING, "credentials_refused")),
        (409, "uniqueness", Reason.OTHER_WORKSPACE, "create", (Severity.PER_USER, "other_workspace")),
        (400, None, Reason.DOMAIN_NOT_VERIFIED, "update", (Severity.PER_USER, "domain_not_verified")),
        (400, "invalidValue", Reason.NO_EMAIL, "create", (Severity.PER_USER, "no_email")),
        (409, "uniqueness", Reason.USER_NAME_TAKEN, "patch", (Severity.PER_USER, "user_name_taken")),
        (400, "invalidValue", Reason.VALUE_TOO_LONG, "create", (Severity.PER_USER, "value_too_long")),
        (400, "invalidValue", None, "create", (Severity.PER_USER, "invalid_value")),
        (400, "invalidSyntax", None, "create", (Severity.PER_USER, "invalid_value")),
        (409, "uniqueness", None, "create", (Severity.PER_USER, "uniqueness")),
        # Nothing a person must act on: the IdP retries, or it was a read.
        (404, None, None, "update", None),
        (412, None, None, "patch", None),
        (429, None, None, "create", None),
        (500, None, None, "create", None),
        (400, "invalidFilter", None, "list", None),
        (409, "uniqueness", Reason.USER_NAME_TAKEN, "list", None),
    ],
)
def test_classification(
    status: int, scim_type: str | None, reason: str | None, operation: str, expected: tuple[str, str] | None
) -> None:
    failure = Failure("ws", operation, status, scim_type, "detail", "ada@x.test", None, T0, reason)
    found = classify(failure)
    assert (found and (found.severity, found.reason)) == (expected and expected)


# --- per-user failures: one prompt mail, then one digest per window ------------------------------------


async def test_per_user_failures_prompt_then_one_digest_with_counts(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    await note(db, settings, per_user(tenant.id, "ada@other.example"))
    first = await mails(db, tenant.id)
    assert len(first) == 1, "the first failure after a quiet window is mailed at once"
    assert first[0].to == [tenant.admin_email]
    assert first[0].subject == f"{tenant.name}: 1 user failed to provision"
    assert "ada@other.example" in first[0].text and "not a verified domain" in first[0].text

    for i, name in enumerate(["bob@other.example", "cy@other.example", "bob@other.example", "BOB@x.test"]):
        await note(db, settings, per_user(tenant.id, name, seconds=10 + i))
    await note(db, settings, per_user(tenant.id, "bob@other.example", 20, reason_code=Reason.USER_NAME_TAKEN))
    assert len(await mails(db, tenant.id)) == 1, "later failures in the window wait for the digest"

    await _flush(db, settings, HOUR - timedelta(seconds=1))
    assert len(await mails(db, tenant.id)) == 1, "not before the window ends"
    assert await _flush(db, settings, HOUR) >= 1
    sent = await mails(db, tenant.id)
    assert len(sent) == 2
    digest = sent[1]
    assert digest.subject == f"{tenant.name}: 3 users failed to provision"  # bob, cy, BOB@x.test
    not_verified = "the e-mail domain is not a verified domain"
    assert f"bob@other.example: {not_verified} (2 times)" in digest.text
    assert "bob@other.example: the userName is taken\n" in digest.text
    assert "cy@other.example: the e-mail domain is not a verified domain\n" in digest.text
    assert "failed 5 times" in digest.text
    url = re.search(r"(http://provisio\.test/console/workspaces/\S+)", digest.text)
    assert url is not None
    parts = urlsplit(url.group(1))
    assert parts.path == f"/console/workspaces/{tenant.key}/log"
    assert parse_qs(parts.query) == {
        "outcome": ["failure"],
        "from": [T0.strftime("%Y-%m-%dT09:00:00Z")],
        "to": [T0.strftime("%Y-%m-%dT10:00:00Z")],
    }
    for part in (digest.text, digest.html):
        assert "/console/notifications/unsubscribe/" in part

    # Never twice: the entries are gone, and the worker's next pass finds nothing to send.
    await _flush(db, settings, HOUR + timedelta(seconds=5))
    assert len(await mails(db, tenant.id)) == 2
    async with db.reading() as session:
        left = await session.scalars(
            select(NotificationDigestEntry).where(NotificationDigestEntry.workspace_id == tenant.id)
        )
        assert list(left) == []


async def test_after_a_digest_the_next_window_collects_and_a_quiet_window_ends_it(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    await note(db, settings, per_user(tenant.id, "a@other.example"))
    await note(db, settings, per_user(tenant.id, "b@other.example", 60))
    await _flush(db, settings, HOUR)
    # The window after a digest is not quiet: its failures wait for its own digest.
    await note(db, settings, per_user(tenant.id, "c@other.example", 3700))
    assert len(await mails(db, tenant.id)) == 2
    await _flush(db, settings, 2 * HOUR)
    subjects = [m.subject for m in await mails(db, tenant.id)]
    assert subjects[-1] == f"{tenant.name}: 1 user failed to provision"
    # A window with nothing to send ends the run: the next failure is mailed at once again.
    await _flush(db, settings, 3 * HOUR)
    assert len(await mails(db, tenant.id)) == 3
    assert (await _state(db, tenant.id)).window_started_at is None
    await note(db, settings, per_user(tenant.id, "d@other.example", 4 * 3600))
    assert len(await mails(db, tenant.id)) == 4


async def test_a_failure_after_the_window_ended_sends_the_digest_itself(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    """The worker may be late: the next failure closes the ended window first."""
    await note(db, settings, per_user(tenant.id, "a@other.example"))
    await note(db, settings, per_user(tenant.id, "b@other.example", 5))
    await note(db, settings, per_user(tenant.id, "c@other.example", 3601))
    sent = await mails(db, tenant.id)
    assert len(sent) == 2 and "b@other.example" in sent[1].text and "c@other.example" not in sent[1].text
    await _flush(db, settings, 2 * HOUR)
    assert "c@other.example" in (await mails(db, tenant.id))[2].text


async def test_the_digest_keeps_a_bounded_list(db: Database, settings: Settings, tenant: OAuthTenant) -> None:
    await note(db, settings, per_user(tenant.id, "first@other.example"))
    extra = 7
    for i in range(failures.MAX_DIGEST_ENTRIES + extra):
        await note(db, settings, per_user(tenant.id, f"u{i:03}@other.example", 1 + i))
    await note(db, settings, per_user(tenant.id, "u000@other.example", 500))  # a kept entry still counts
    async with db.reading() as session:
        kept = list(
            await session.scalars(
                select(NotificationDigestEntry).where(NotificationDigestEntry.workspace_id == tenant.id)
            )
        )
    assert len(kept) == failures.MAX_DIGEST_ENTRIES
    await _flush(db, settings, HOUR)
    digest = (await mails(db, tenant.id))[-1]
    cap = failures.MAX_DIGEST_ENTRIES
    assert digest.subject == f"{tenant.name}: more than {cap} users failed to provision"
    assert f"and {extra} more failures not listed here" in digest.text
    assert f"and {extra} more failures not listed here" in digest.html
    assert "u000@other.example: the e-mail domain is not a verified domain (2 times)" in digest.text


# --- blocking failures ----------------------------------------------------------------------------------


async def test_a_blocking_failure_is_mailed_once_per_window_and_repeats_are_counted(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    for i in range(30):
        await note(db, settings, no_seat(tenant.id, f"user{i}@x.test", seconds=i))
    sent = await mails(db, tenant.id)
    assert len(sent) == 1
    reason = "no free seat, and license auto-charge is off"
    assert sent[0].subject == f"{tenant.name}: provisioning blocked, 1 request refused ({reason})"
    assert "Every user it sends is refused" in sent[0].text
    await _flush(db, settings, HOUR)
    digest = (await mails(db, tenant.id))[-1]
    assert digest.subject == f"{tenant.name}: 29 users failed to provision"
    assert "failed 29 times" in digest.text


async def test_a_blocking_failure_is_mailed_at_once_inside_a_per_user_window(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    await note(db, settings, per_user(tenant.id, "a@other.example"))
    await note(db, settings, per_user(tenant.id, "b@other.example", 1))
    await note(db, settings, no_seat(tenant.id, "c@x.test", 2))
    refused = Failure(tenant.id, "create", 401, None, "Authentication required", None, None, T0 + HOUR / 2)
    await note(db, settings, refused)
    await note(db, settings, refused)  # the same reason again: counted, not mailed
    subjects = [m.subject for m in await mails(db, tenant.id)]
    assert len(subjects) == 3
    assert "no free seat" in subjects[1] and "credentials were refused" in subjects[2]
    await _flush(db, settings, HOUR)
    digest = (await mails(db, tenant.id))[-1]
    assert "(no user named): the identity provider's credentials were refused\n" in digest.text


async def test_failures_nobody_must_act_on_mail_nobody(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    for status in (404, 412, 429, 500):
        await note(db, settings, Failure(tenant.id, "update", status, None, "x", "a@x.test", None, T0))
    assert await mails(db, tenant.id) == []


# --- concurrency ----------------------------------------------------------------------------------------


async def test_two_concurrent_first_failures_mail_once(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    # Different moments, so only the state row's lock (not the dedupe key) can keep the second quiet;
    # the row exists already (as after any earlier window), so the insert that creates it does not
    # serialise them either.
    for _ in range(3):
        tenant = await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)
        async with db.writing() as session:
            await notification_service.locked_state(session, tenant.id)
        await asyncio.gather(
            note(db, settings, per_user(tenant.id, "a@other.example")),
            note(db, settings, per_user(tenant.id, "b@other.example", 0.001)),
        )
        assert len(await mails(db, tenant.id)) == 1
        assert (await _state(db, tenant.id)).pending == 1


async def test_concurrent_first_failures_of_both_kinds(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    await asyncio.gather(
        note(db, settings, per_user(tenant.id, "a@other.example")),
        note(db, settings, per_user(tenant.id, "b@other.example")),
        note(db, settings, no_seat(tenant.id, "c@x.test")),
        note(db, settings, no_seat(tenant.id, "d@x.test")),
    )
    subjects = sorted(m.subject for m in await mails(db, tenant.id))
    # One prompt for the window and one for the blocking reason, whichever came first.
    assert len(subjects) in (1, 2)
    assert sum("blocked" in s for s in subjects) == 1
    state = await _state(db, tenant.id)
    assert state.pending == 4 - len(subjects)


async def test_concurrent_flushes_send_one_digest(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    await note(db, settings, per_user(tenant.id, "a@other.example"))
    await note(db, settings, per_user(tenant.id, "b@other.example", 1))
    await asyncio.gather(_flush(db, settings, HOUR), _flush(db, settings, HOUR))
    assert len(await mails(db, tenant.id)) == 2


# --- recipients -----------------------------------------------------------------------------------------


async def test_every_admin_and_extra_address_is_mailed_less_those_who_opted_out(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    second_admin = await make_admin(db, tenant.key)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await notification_service.add_recipient(session, ws, "IT-Team@Example.com", added_by="test")
        await notification_service.add_recipient(session, ws, "quiet@example.com", added_by="test")
        await notification_service.opt_out(session, tenant.id, "Quiet@Example.com")
    await note(db, settings, per_user(tenant.id, "a@other.example"))
    sent = await mails(db, tenant.id)
    assert sorted(m.to[0] for m in sent) == sorted([tenant.admin_email, second_admin, "IT-Team@Example.com"])
    tokens = {m.to[0]: re.search(r"/unsubscribe/(\S+)", m.text).group(1) for m in sent}  # type: ignore[union-attr]
    assert len(set(tokens.values())) == 3, "each recipient has a link of its own"
    found = notification_service.read_unsubscribe_token(settings.secret_key, tokens["IT-Team@Example.com"])
    assert found == notification_service.Unsubscription(tenant.id, "it-team@example.com")
    assert notification_service.read_unsubscribe_token("another key", tokens[second_admin]) is None


async def test_hostile_user_names_are_escaped_in_html(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    hostile = '<script>alert("x")</script><a href="https://evil.example">'
    await note(db, settings, per_user(tenant.id, hostile, detail=f"bad {hostile}"))
    await note(db, settings, per_user(tenant.id, hostile + "2", 5))
    await _flush(db, settings, HOUR)
    for mail in await mails(db, tenant.id):
        assert "<script" not in mail.html and 'href="https://evil.example"' not in mail.html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in mail.html
        assert hostile in mail.text


async def test_a_workspace_digest_window_of_its_own(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await notification_service.set_digest_seconds(session, ws, 600)
    await note(db, settings, per_user(tenant.id, "a@other.example"))
    await note(db, settings, per_user(tenant.id, "b@other.example", 30))
    assert (await _state(db, tenant.id)).window_ends_at == T0 + timedelta(seconds=600)
    await _flush(db, settings, timedelta(seconds=600))
    assert len(await mails(db, tenant.id)) == 2


async def test_an_address_the_outbox_refuses_does_not_fail_the_log(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    """An admin account's e-mail is checked less strictly than the outbox checks recipients."""
    odd = await make_admin(db, tenant.key)
    async with db.writing() as session:
        await session.execute(
            update(Admin)
            .where(Admin.email == odd)
            .values(email="a,b@acme.example", email_lower="a,b@acme.example")
        )
    await note(db, settings, per_user(tenant.id, "a@other.example"))
    assert [m.to for m in await mails(db, tenant.id)] == [[tenant.admin_email]]


async def test_a_rolled_back_transaction_takes_its_mail_and_window_with_it(
    db: Database, settings: Settings, tenant: OAuthTenant
) -> None:
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with db.writing() as session:
            await failures.note_failure(session, per_user(tenant.id, "a@other.example"), settings)
            raise Rollback
    assert await mails(db, tenant.id) == []
    await note(db, settings, per_user(tenant.id, "b@other.example", 5))
    [mail] = await mails(db, tenant.id)
    assert "b@other.example" in mail.text, "the window was never opened: this failure is the first"
