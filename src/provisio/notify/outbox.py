"""The outbox: notifications written in the transaction of the change that causes them.

``enqueue`` adds a row with the caller's session, so the notification exists exactly when the change
commits (a rollback takes it away too). A worker (``provisio.notify.worker``) then claims due rows with a
lease, delivers them and marks them sent; see ``claim_due`` for how the two databases claim.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import OutboxMessage, new_id, utcnow

MAIL = "mail"
WEBHOOK = "webhook"
KINDS = frozenset({MAIL, WEBHOOK})

# In-process wake-ups: a worker running in this process registers one and is woken when a transaction
# that enqueued commits, instead of waiting for its next poll.
_listeners: set[Callable[[], None]] = set()


def add_wakeup(callback: Callable[[], None]) -> None:
    _listeners.add(callback)


def remove_wakeup(callback: Callable[[], None]) -> None:
    _listeners.discard(callback)


def _wake(_session: Any) -> None:
    for callback in list(_listeners):
        callback()


def _insert(dialect: Any) -> Any:
    # Both dialects spell "skip a duplicate dedupe key" the same way, through their own constructs.
    return dialect.insert(OutboxMessage).on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])


_INSERTS = {"postgresql": _insert(postgresql), "sqlite": _insert(sqlite)}


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    workspace_id: str | None = None,
    dedupe_key: str | None = None,
    available_at: datetime | None = None,
) -> str | None:
    """Add a notification in the caller's transaction; its id, or None when ``dedupe_key`` was already
    enqueued (the earlier row stands, whether pending, sent or dead)."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    if available_at is not None and available_at.tzinfo is None:
        raise ValueError("available_at must be timezone-aware")
    now = utcnow()
    row_id = new_id()
    statement = _INSERTS[session.get_bind().dialect.name].returning(OutboxMessage.id)
    inserted = await session.scalar(
        statement,
        {
            "id": row_id,
            "kind": kind,
            "payload": orjson.dumps(payload).decode(),
            "workspace_id": workspace_id,
            "dedupe_key": dedupe_key,
            "created_at": now,
            "available_at": available_at or now,
            "attempts": 0,
        },
    )
    if inserted is None:
        return None
    if _listeners:
        event.listen(session.sync_session, "after_commit", _wake, once=True)
    return str(inserted)


def _header_safe(value: str, what: str) -> str:
    # A line break in a header value would let the text add headers (or recipients) of its own.
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must not contain line breaks")
    return value


async def enqueue_mail(
    session: AsyncSession,
    *,
    to: list[str],
    subject: str,
    text: str,
    html: str | None,
    workspace_id: str | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """Enqueue an e-mail (plain text, and HTML as an alternative when given) to ``to``.

    Returns the outbox id, or None when nothing was enqueued: no recipients (nobody to tell), or a
    ``dedupe_key`` that was enqueued before."""
    recipients = [_header_safe(address.strip(), "a recipient") for address in to if address.strip()]
    if not recipients:
        return None
    for address in recipients:
        if "@" not in address or "," in address:
            raise ValueError(f"not one e-mail address: {address!r}")
    payload = {
        "to": recipients,
        "subject": _header_safe(subject, "the subject"),
        "text": text,
        "html": html,
    }
    return await enqueue(
        session, kind=MAIL, payload=payload, workspace_id=workspace_id, dedupe_key=dedupe_key
    )
