"""Who gets a workspace's failure e-mails, and how often: its admins plus the addresses an admin added,
less those who unsubscribed; and the digest window an admin chose. What is mailed, and when, is
``provisio.notify.failures``.

An unsubscribe link carries a token signed with the secret key over (workspace, address): nothing is
stored until the recipient confirms, and the page works without signing in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import (
    NotificationOptOut,
    NotificationRecipient,
    NotificationState,
    Workspace,
    utcnow,
)
from provisio.domain import admins
from provisio.domain.errors import DomainError, Kind
from provisio.domain.uniqueness import flush_or_conflict
from provisio.domain.workspace_state import ensure_changeable

MIN_DIGEST_SECONDS = 60
MAX_DIGEST_SECONDS = 7 * 86400
MAX_EXTRA_RECIPIENTS = 20
_TOKEN_PURPOSE = b"notify-unsubscribe:"


def _insert(dialect: Any) -> Any:
    return dialect.insert(NotificationState).on_conflict_do_nothing(
        index_elements=[NotificationState.workspace_id]
    )


_ENSURE_STATE = {"postgresql": _insert(postgresql), "sqlite": _insert(sqlite)}


async def locked_state(session: AsyncSession, workspace_id: str) -> NotificationState:
    """The workspace's notification state, created when missing and locked for the transaction.

    ``INSERT … ON CONFLICT DO NOTHING`` first, so two transactions creating it meet on the primary key
    (the second waits for the first to commit), then ``SELECT … FOR UPDATE``: every writer of the state
    queues on this row. SQLite's write transactions are serialised already (``BEGIN IMMEDIATE``)."""
    statement = _ENSURE_STATE[session.get_bind().dialect.name]
    await session.execute(
        statement,
        {"workspace_id": workspace_id, "prompted": "", "pending": 0, "overflow": 0},
    )
    query = (
        select(NotificationState)
        .where(NotificationState.workspace_id == workspace_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one()


async def digest_seconds(session: AsyncSession, workspace_id: str) -> int | None:
    """The window this workspace's admins chose (None: the server's default)."""
    return await session.scalar(
        select(NotificationState.digest_seconds).where(NotificationState.workspace_id == workspace_id)
    )


async def set_digest_seconds(session: AsyncSession, workspace: Workspace, seconds: int | None) -> None:
    """Choose the workspace's digest window (None: the server's default). A window already open keeps
    the end it was opened with."""
    ensure_changeable(workspace)
    if seconds is not None and not MIN_DIGEST_SECONDS <= seconds <= MAX_DIGEST_SECONDS:
        raise DomainError(
            Kind.INVALID,
            f"The digest window must be between {MIN_DIGEST_SECONDS // 60} minute and "
            f"{MAX_DIGEST_SECONDS // 86400} days.",
        )
    state = await locked_state(session, workspace.id)
    state.digest_seconds = seconds
    await session.flush()


def normalise_address(raw: str) -> str:
    """One e-mail address, stripped (the rule is the admins' own)."""
    return admins.normalise_address(raw)


async def extra_recipients(session: AsyncSession, workspace_id: str) -> list[NotificationRecipient]:
    result = await session.execute(
        select(NotificationRecipient)
        .where(NotificationRecipient.workspace_id == workspace_id)
        .order_by(NotificationRecipient.email_lower)
    )
    return list(result.scalars())


async def add_recipient(
    session: AsyncSession, workspace: Workspace, email: str, *, added_by: str
) -> NotificationRecipient:
    ensure_changeable(workspace)
    address = normalise_address(email)
    existing = await extra_recipients(session, workspace.id)
    taken = DomainError(Kind.CONFLICT, f"{address} already receives this workspace's failure e-mails.")
    if any(r.email_lower == address.lower() for r in existing):
        raise taken
    if len(existing) >= MAX_EXTRA_RECIPIENTS:
        raise DomainError(
            Kind.INVALID, f"A workspace can have at most {MAX_EXTRA_RECIPIENTS} extra addresses."
        )
    recipient = NotificationRecipient(
        workspace_id=workspace.id,
        email=address,
        email_lower=address.lower(),
        added_by=added_by[:320],
        created_at=utcnow(),
    )
    session.add(recipient)
    await flush_or_conflict(session, ("uq_notification_recipients_address", "email_lower"), taken)
    return recipient


async def remove_recipient(session: AsyncSession, workspace: Workspace, email: str) -> str:
    """Remove an extra address (the workspace's own only); returns it as it was added."""
    ensure_changeable(workspace)
    # A control character (NUL above all) is in no address, and PostgreSQL cannot even compare it.
    lower = email.strip().lower() if email.isprintable() else ""
    found = await session.scalar(
        select(NotificationRecipient).where(
            NotificationRecipient.workspace_id == workspace.id, NotificationRecipient.email_lower == lower
        )
    )
    if found is None or not lower:
        raise DomainError(Kind.NOT_FOUND, f"{email.strip()[:320]} is not an extra address of this workspace.")
    await session.delete(found)
    await session.flush()
    return found.email


async def opted_out(session: AsyncSession, workspace_id: str) -> list[NotificationOptOut]:
    result = await session.execute(
        select(NotificationOptOut)
        .where(NotificationOptOut.workspace_id == workspace_id)
        .order_by(NotificationOptOut.email_lower)
    )
    return list(result.scalars())


async def recipients(session: AsyncSession, workspace_id: str) -> list[str]:
    """Every address that gets the workspace's failure e-mails: admins, then extra addresses, each
    once (ignoring case), without those who unsubscribed."""
    out = {o.email_lower for o in await opted_out(session, workspace_id)}
    seen: set[str] = set()
    found: list[str] = []
    extra = [r.email for r in await extra_recipients(session, workspace_id)]
    for address in [*await admins.workspace_admin_emails(session, workspace_id), *extra]:
        lower = address.lower()
        if lower not in out and lower not in seen:
            seen.add(lower)
            found.append(address)
    return found


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), _TOKEN_PURPOSE + body.encode(), hashlib.sha256).digest())


def unsubscribe_token(secret: str, workspace_id: str, email: str) -> str:
    body = _b64(orjson.dumps([workspace_id, email.strip().lower()]))
    return f"{body}.{_sign(secret, body)}"


@dataclass(frozen=True)
class Unsubscription:
    workspace_id: str
    email_lower: str


def read_unsubscribe_token(secret: str, token: str) -> Unsubscription | None:
    """What a token unsubscribes, or None when it is not one this server signed."""
    body, dot, signature = token.partition(".")
    if not dot or len(token) > 1000 or not hmac.compare_digest(signature, _sign(secret, body)):
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        return None
    return Unsubscription(value[0], value[1])


async def is_opted_out(session: AsyncSession, workspace_id: str, email: str) -> bool:
    found = await session.scalar(
        select(NotificationOptOut.email_lower).where(
            NotificationOptOut.workspace_id == workspace_id,
            NotificationOptOut.email_lower == email.strip().lower(),
        )
    )
    return found is not None


async def opt_out(session: AsyncSession, workspace_id: str, email: str) -> None:
    """Stop the workspace's failure e-mails to ``email`` (idempotent, also when two confirmations of
    the same link race)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(NotificationOptOut).on_conflict_do_nothing(
        index_elements=[NotificationOptOut.workspace_id, NotificationOptOut.email_lower]
    )
    await session.execute(
        statement, {"workspace_id": workspace_id, "email_lower": email.strip().lower(), "at": utcnow()}
    )


async def opt_in(session: AsyncSession, workspace_id: str, email: str) -> None:
    """Resume the e-mails to ``email`` (the recipient's own choice, from the same link)."""
    await session.execute(
        delete(NotificationOptOut).where(
            NotificationOptOut.workspace_id == workspace_id,
            NotificationOptOut.email_lower == email.strip().lower(),
        )
    )
