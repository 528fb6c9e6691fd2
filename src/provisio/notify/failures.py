"""Failure e-mails: tell a workspace's admins when its identity provider fails to provision users.

A failure is *blocking* when it refuses every user alike (no free seat with auto-charge off, the
auto-charge maximum reached, no verified domain, the Tenant URL refusing the credentials) and
*per-user* when it is about one user's values (another workspace has them, an e-mail outside the
verified domains, an invalid or too long value, a userName taken). Other failures (a stale version, an
unknown id, rate limits, server errors) are the identity provider's to retry and mail nobody.

Windows. A workspace is quiet until a failure opens a window of its digest length; that first failure
is mailed at once. Within the window, each blocking reason not yet mailed is mailed at once too; every
other failure waits, aggregated by (userName, reason) with counts, for the digest sent when the window
ends (``flush_due_digests``, called by the outbox worker's loop). A window that ended with a digest is
followed by another at once, so failures that keep coming are mailed once a window; a window that ends
without anything to send leaves the workspace quiet again.

Everything is written with the caller's session in the transaction that logs the failure, under the
workspace's notification state row lock (``domain.notifications.locked_state``): two concurrent first
failures open one window and mail once. Each e-mail also has a dedupe key (workspace, window, kind,
recipient), so a retried transaction or a second worker never mails twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import jinja2
import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import NotificationDigestEntry, NotificationState, Workspace, utcnow
from provisio.domain import notifications
from provisio.domain.errors import Reason
from provisio.notify.outbox import enqueue_mail

log = structlog.get_logger("provisio.notify")

# Reasons the notifier adds for failures that carry no domain reason.
CREDENTIALS_REFUSED = "credentials_refused"  # 401 on the workspace's Tenant URL
INVALID_VALUE = "invalid_value"  # a 400 about the request's values
UNIQUENESS = "uniqueness"  # a 409 without a finer reason

BLOCKING_REASONS = frozenset(
    {Reason.NO_FREE_SEAT, Reason.AUTO_CHARGE_MAXIMUM, Reason.NO_VERIFIED_DOMAIN, CREDENTIALS_REFUSED}
)
PER_USER_REASONS = frozenset(
    {
        Reason.OTHER_WORKSPACE,
        Reason.DOMAIN_NOT_VERIFIED,
        Reason.NO_EMAIL,
        Reason.USER_NAME_TAKEN,
        Reason.VALUE_TOO_LONG,
        INVALID_VALUE,
        UNIQUENESS,
    }
)
# What a person is told each reason means.
REASON_LABELS = {
    Reason.NO_FREE_SEAT: "no free seat, and license auto-charge is off",
    Reason.AUTO_CHARGE_MAXIMUM: "no free seat, and license auto-charge has reached its maximum",
    Reason.NO_VERIFIED_DOMAIN: "the workspace has no verified domain",
    CREDENTIALS_REFUSED: "the identity provider's credentials were refused",
    Reason.OTHER_WORKSPACE: "the person belongs to another workspace",
    Reason.DOMAIN_NOT_VERIFIED: "the e-mail domain is not a verified domain",
    Reason.NO_EMAIL: "the user has no e-mail address",
    Reason.USER_NAME_TAKEN: "the userName is taken",
    Reason.VALUE_TOO_LONG: "a value is too long",
    INVALID_VALUE: "an invalid value",
    UNIQUENESS: "a value that must be unique is taken",
}
# The provisioning log's actions that try to provision a user; a failed read or delete is not one.
WRITE_OPERATIONS = frozenset({"create", "update", "patch", "deactivate"})
# scimType values (RFC 7644 §3.12) that say the request's values were refused.
_VALUE_SCIM_TYPES = frozenset({"invalidValue", "invalidSyntax", "mutability", "invalidPath", "noTarget"})
MAX_DIGEST_ENTRIES = 50  # distinct (userName, reason) kept per digest; beyond: "and N more"
_DETAIL_CHARS = 1000


@dataclass(frozen=True)
class Failure:
    """A failed SCIM request, as the provisioning log records it."""

    workspace_id: str
    operation: str  # the log's action: create, update, patch, deactivate, delete, …
    status: int
    scim_type: str | None = None
    detail: str = ""
    user_name: str | None = None
    member_id: str | None = None
    at: datetime = field(default_factory=utcnow)
    reason_code: str | None = None  # ``ScimError.reason``: the domain rule that refused


class RefusedRequest(Protocol):
    """What a SCIM error says about a refusal (``provisio.scim.errors.ScimError``)."""

    status: int
    detail: str
    scim_type: str | None
    reason: str | None


def failure_from_error(
    workspace_id: str,
    operation: str,
    error: RefusedRequest,
    *,
    user_name: str | None = None,
    member_id: str | None = None,
    at: datetime | None = None,
) -> Failure:
    """The failure of a request that ended in ``error``, as the provisioning log writes it."""
    return Failure(
        workspace_id=workspace_id,
        operation=operation,
        status=error.status,
        scim_type=error.scim_type,
        detail=error.detail,
        user_name=user_name,
        member_id=member_id,
        at=at or utcnow(),
        reason_code=error.reason,
    )


class Severity(StrEnum):
    BLOCKING = "blocking"
    PER_USER = "per_user"


@dataclass(frozen=True)
class Classified:
    severity: Severity
    reason: str

    @property
    def blocking(self) -> bool:
        return self.severity is Severity.BLOCKING


def classify(failure: Failure) -> Classified | None:
    """Blocking, per-user, or None (nothing to mail)."""
    if failure.status == 401:
        return Classified(Severity.BLOCKING, CREDENTIALS_REFUSED)
    reason = failure.reason_code
    if reason in BLOCKING_REASONS:
        return Classified(Severity.BLOCKING, reason)
    if failure.operation not in WRITE_OPERATIONS:
        return None
    if reason in PER_USER_REASONS:
        return Classified(Severity.PER_USER, reason)
    if failure.status == 400 and failure.scim_type in _VALUE_SCIM_TYPES:
        return Classified(Severity.PER_USER, INVALID_VALUE)
    if failure.status == 409:
        return Classified(Severity.PER_USER, UNIQUENESS)
    return None


# --- noting a failure -----------------------------------------------------------------------------


def _window_length(state: NotificationState, settings: Settings) -> timedelta:
    return timedelta(seconds=state.digest_seconds or settings.notify_digest_seconds)


def _prompted(state: NotificationState) -> set[str]:
    return {r for r in state.prompted.split(",") if r}


def _quiet(state: NotificationState) -> None:
    state.window_started_at = None
    state.window_ends_at = None
    state.prompted = ""


def _open(state: NotificationState, start: datetime, settings: Settings) -> None:
    state.window_started_at = start
    state.window_ends_at = start + _window_length(state, settings)
    state.prompted = ""


async def note_failure(session: AsyncSession, failure: Failure, settings: Settings) -> None:
    """Mail the failure now, count it into the digest, or neither (see the module's docstring). Call it
    in the transaction that writes the failure's provisioning event."""
    classified = classify(failure)
    if classified is None:
        return
    state = await notifications.locked_state(session, failure.workspace_id)
    await _close_if_ended(session, state, failure.at, settings)
    if state.window_started_at is None:
        _open(state, failure.at, settings)
        if classified.blocking:
            state.prompted = classified.reason
        await _send_prompt(session, state, failure, classified, settings)
    elif classified.blocking and classified.reason not in _prompted(state):
        state.prompted = ",".join(sorted(_prompted(state) | {classified.reason}))
        await _send_prompt(session, state, failure, classified, settings)
    else:
        await _count(session, state, failure, classified)
    await session.flush()


async def _count(
    session: AsyncSession, state: NotificationState, failure: Failure, classified: Classified
) -> None:
    """Add the failure to the pending digest: one more of its (userName, reason), or past the cap one
    more of "N more"."""
    user_name = (failure.user_name or "")[:512]
    detail = failure.detail[:_DETAIL_CHARS]
    state.pending += 1
    entry = await session.scalar(
        select(NotificationDigestEntry).where(
            NotificationDigestEntry.workspace_id == state.workspace_id,
            NotificationDigestEntry.reason == classified.reason,
            NotificationDigestEntry.user_name == user_name,
        )
    )
    if entry is not None:
        entry.count += 1
        entry.last_at = failure.at
        entry.detail = detail
        return
    kept = await _entry_count(session, state.workspace_id)
    if kept >= MAX_DIGEST_ENTRIES:
        state.overflow += 1
        return
    session.add(
        NotificationDigestEntry(
            workspace_id=state.workspace_id,
            user_name=user_name,
            reason=classified.reason,
            count=1,
            first_at=failure.at,
            last_at=failure.at,
            detail=detail,
        )
    )


async def _entry_count(session: AsyncSession, workspace_id: str) -> int:
    query = select(func.count()).where(NotificationDigestEntry.workspace_id == workspace_id)
    return int(await session.scalar(query) or 0)


async def _close_if_ended(
    session: AsyncSession, state: NotificationState, now: datetime, settings: Settings
) -> bool:
    """End the state's window when ``now`` is past it: send its digest if anything waits, then open
    the next window right after it (or go quiet if nothing waited or that one is over too). Whether a
    digest was sent."""
    ended = state.window_ends_at
    if ended is None or now < ended:
        return False
    sent = False
    if state.pending:
        sent = await _send_digest(session, state, settings)
    await session.execute(
        delete(NotificationDigestEntry).where(NotificationDigestEntry.workspace_id == state.workspace_id)
    )
    state.pending = state.overflow = 0
    if sent and now < ended + _window_length(state, settings):
        _open(state, ended, settings)
    else:
        _quiet(state)
    return sent


async def flush_due_digests(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Send the digest of every window that has ended; how many digests were sent. The outbox worker's
    loop calls it every few seconds: one transaction per workspace, under its state row lock."""
    now = now or utcnow()
    async with db.reading() as session:
        due = list(
            await session.scalars(
                select(NotificationState.workspace_id)
                .where(NotificationState.window_ends_at <= now)
                .order_by(NotificationState.window_ends_at)
                .limit(500)
            )
        )
    sent = 0
    for workspace_id in due:
        try:
            async with db.writing() as session:
                state = await notifications.locked_state(session, workspace_id)
                if await _close_if_ended(session, state, now, settings):
                    sent += 1
        except Exception:
            # Its transaction is rolled back, so the window stays ended and the next pass tries it
            # again; the workspaces after it (it is first by window end) still get theirs now.
            log.exception("failures.digest_failed", workspace_id=workspace_id)
    return sent


# --- the e-mails --------------------------------------------------------------------------------------

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    # User names come from identity providers: HTML escapes everything; plain text needs nothing.
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Line:
    user_name: str
    reason: str
    label: str
    count: int
    detail: str
    blocking: bool


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_url(settings: Settings, workspace: Workspace, start: datetime, end: datetime) -> str:
    query = urlencode({"outcome": "failure", "from": _iso(start), "to": _iso(end)})
    return f"{settings.public_base}/console/workspaces/{workspace.key}/log?{query}"


def _one_line(text: str) -> str:
    # The subject is a header: no line breaks, whatever a workspace is called.
    return " ".join(text.split())[:200]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _dedupe_key(*parts: str) -> str:
    return "failures:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


async def _mail(
    session: AsyncSession,
    workspace: Workspace,
    settings: Settings,
    *,
    subject: str,
    context: dict[str, Any],
    key: tuple[str, ...],
) -> bool:
    """One e-mail per recipient (each with its own unsubscribe link); whether anyone was mailed."""
    mailed = False
    for address in await notifications.recipients(session, workspace.id):
        token = notifications.unsubscribe_token(settings.secret_key, workspace.id, address)
        values = {
            **context,
            "workspace": workspace,
            "subject": subject,
            "recipient": address,
            "unsubscribe_url": f"{settings.public_base}/console/notifications/unsubscribe/{token}",
            "settings_url": f"{settings.public_base}/console/workspaces/{workspace.key}/notifications",
        }
        try:
            queued = await enqueue_mail(
                session,
                to=[address],
                subject=subject,
                text=_TEMPLATES.get_template("failures.txt").render(values),
                html=_TEMPLATES.get_template("failures.html").render(values),
                workspace_id=workspace.id,
                dedupe_key=_dedupe_key(*key, address.lower()),
            )
        except ValueError:
            # An address the outbox cannot send to (an admin account's e-mail is checked less strictly)
            # must not fail the transaction that logs the failure.
            log.warning("failures.unmailable_recipient", workspace=workspace.key)
            continue
        mailed = mailed or queued is not None
    return mailed


async def _workspace(session: AsyncSession, workspace_id: str) -> Workspace:
    workspace = await session.get(Workspace, workspace_id)
    assert workspace is not None  # its state row, locked, references it
    return workspace


async def _send_prompt(
    session: AsyncSession,
    state: NotificationState,
    failure: Failure,
    classified: Classified,
    settings: Settings,
) -> None:
    assert state.window_started_at is not None and state.window_ends_at is not None
    workspace = await _workspace(session, state.workspace_id)
    label = REASON_LABELS[classified.reason]
    if classified.blocking:
        subject = f"{workspace.name}: provisioning blocked, 1 request refused ({label})"
    else:
        subject = f"{workspace.name}: 1 user failed to provision"
    line = Line(
        user_name=failure.user_name or "",
        reason=classified.reason,
        label=label,
        count=1,
        detail=failure.detail[:_DETAIL_CHARS],
        blocking=classified.blocking,
    )
    context = {
        "kind": "prompt",
        "blocking": classified.blocking,
        "lines": [line],
        "more": 0,
        "window_minutes": _window_length(state, settings) // timedelta(minutes=1),
        "log_url": _log_url(settings, workspace, failure.at, state.window_ends_at),
    }
    window = state.window_started_at.isoformat()
    await _mail(
        session,
        workspace,
        settings,
        subject=_one_line(subject),
        context=context,
        key=("prompt", workspace.id, window, classified.reason if classified.blocking else "user"),
    )


async def _send_digest(session: AsyncSession, state: NotificationState, settings: Settings) -> bool:
    assert state.window_started_at is not None and state.window_ends_at is not None
    workspace = await _workspace(session, state.workspace_id)
    entries = list(
        await session.scalars(
            select(NotificationDigestEntry)
            .where(NotificationDigestEntry.workspace_id == workspace.id)
            .order_by(NotificationDigestEntry.count.desc(), NotificationDigestEntry.user_name)
        )
    )
    lines = [
        Line(
            user_name=e.user_name,
            reason=e.reason,
            label=REASON_LABELS.get(e.reason, e.reason),
            count=e.count,
            detail=e.detail,
            blocking=e.reason in BLOCKING_REASONS,
        )
        for e in entries
    ]
    users = len({line.user_name.lower() for line in lines if line.user_name})
    if state.overflow:
        subject = f"{workspace.name}: more than {_plural(users, 'user')} failed to provision"
    elif users:
        subject = f"{workspace.name}: {_plural(users, 'user')} failed to provision"
    else:
        subject = f"{workspace.name}: {_plural(state.pending, 'provisioning request')} refused"
    context = {
        "kind": "digest",
        "blocking": any(line.blocking for line in lines),
        "lines": lines,
        "more": state.overflow,
        "total": state.pending,
        "window_minutes": _window_length(state, settings) // timedelta(minutes=1),
        "log_url": _log_url(settings, workspace, state.window_started_at, state.window_ends_at),
        "window_start": state.window_started_at.strftime("%Y-%m-%d %H:%M"),
        "window_end": state.window_ends_at.strftime("%Y-%m-%d %H:%M"),
    }
    return await _mail(
        session,
        workspace,
        settings,
        subject=_one_line(subject),
        context=context,
        key=("digest", workspace.id, state.window_started_at.isoformat()),
    )
