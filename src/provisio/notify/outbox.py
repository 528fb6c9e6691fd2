"""The outbox: notifications written in the transaction of the change that causes them.

``enqueue`` adds a row with the caller's session, so the notification exists exactly when the change
commits (a rollback takes it away too). A worker (``provisio.notify.worker``) then claims due rows with a
lease, delivers them and marks them sent; see ``claim_due`` for how the two databases claim.

A row is *pending* until it is sent or given up (dead); a pending row is *due* once its
``available_at`` has passed and no live lease holds it. A lease that runs out (its worker died between
claiming and marking) makes the row due again, so delivery is at least once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, delete, event, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.engine import Database
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
    secret: bool = False,
) -> str | None:
    """Enqueue an e-mail (plain text, and HTML as an alternative when given) to ``to``.

    ``secret``: the mail carries a credential (a set-password link); its text is kept only until it is
    sent, then replaced by a marker, so the row keeps no usable secret through its retention.
    Returns the outbox id, or None when nothing was enqueued: no recipients (nobody to tell), or a
    ``dedupe_key`` that was enqueued before."""
    recipients = [_header_safe(address.strip(), "a recipient") for address in to if address.strip()]
    if not recipients:
        return None
    for address in recipients:
        if "@" not in address or "," in address:
            raise ValueError(f"not one e-mail address: {address!r}")
    payload: dict[str, Any] = {
        "to": recipients,
        "subject": _header_safe(subject, "the subject"),
        "text": text,
        "html": html,
    }
    if secret:
        payload["secret"] = True
    return await enqueue(
        session, kind=MAIL, payload=payload, workspace_id=workspace_id, dedupe_key=dedupe_key
    )


# --- Claiming and recording outcomes (the worker's side) ---------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A row leased to one worker until ``claimed_until``."""

    id: str
    kind: str
    payload: dict[str, Any]
    workspace_id: str | None
    created_at: datetime
    attempts: int  # failed attempts before this one
    claimed_until: datetime


def pending() -> list[ColumnElement[bool]]:
    """Neither sent nor given up: the condition of the partial index ``ix_outbox_pending_due``."""
    return [OutboxMessage.sent_at.is_(None), OutboxMessage.dead_at.is_(None)]


def due(now: datetime) -> list[ColumnElement[bool]]:
    return [
        *pending(),
        OutboxMessage.available_at <= now,
        or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
    ]


async def claim_due(
    db: Database,
    worker_id: str,
    *,
    kinds: Collection[str],
    limit: int,
    lease_seconds: float,
    now: datetime | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due rows of ``kinds`` to ``worker_id``, oldest due first, and commit the
    lease before returning, so no other worker takes them while they are being delivered.

    The only place where the databases differ: PostgreSQL picks the rows with ``FOR UPDATE SKIP
    LOCKED``, so concurrent workers each lease different rows without waiting for one another; SQLite
    runs one writer at a time (``BEGIN IMMEDIATE``), so the same single UPDATE cannot race there."""
    now = now or utcnow()
    until = now + timedelta(seconds=lease_seconds)
    picked = (
        select(OutboxMessage.id)
        .where(*due(now), OutboxMessage.kind.in_(list(kinds)))
        .order_by(OutboxMessage.available_at)
        .limit(limit)
    )
    if db.dialect == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(picked))
        .values(claimed_by=worker_id, claimed_until=until)
        .returning(
            OutboxMessage.id,
            OutboxMessage.kind,
            OutboxMessage.payload,
            OutboxMessage.workspace_id,
            OutboxMessage.created_at,
            OutboxMessage.available_at,
            OutboxMessage.attempts,
        )
        .execution_options(synchronize_session=False)
    )
    async with db.writing() as session:
        rows = sorted((await session.execute(statement)).all(), key=lambda row: row.available_at)
    return [
        Claimed(
            id=row.id,
            kind=row.kind,
            payload=orjson.loads(row.payload),
            workspace_id=row.workspace_id,
            created_at=row.created_at,
            attempts=row.attempts,
            claimed_until=until,
        )
        for row in rows
    ]


SCRUBBED = '{"scrubbed": "sent; it carried a secret"}'


async def mark_sent(db: Database, row_id: str, *, now: datetime | None = None, scrub: bool = False) -> None:
    """Delivered. Marked whoever holds the lease now: the delivery happened either way, and a row
    marked sent is never taken again. ``scrub``: the payload carried a secret, which goes with it."""
    values: dict[str, Any] = {
        "sent_at": now or utcnow(),
        "claimed_by": None,
        "claimed_until": None,
        "last_error": None,
    }
    if scrub:
        values["payload"] = SCRUBBED
    async with db.writing() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.sent_at.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def backoff_seconds(
    failures: int, *, base: float, cap: float, jitter: Callable[[], float] = random.random
) -> float:
    """The wait after the ``failures``-th failure: base · 2^(failures-1), at most ``cap``, ±20 % so that
    rows which failed together do not all come back at the same moment."""
    delay = min(base * 2 ** max(failures - 1, 0), cap)
    return delay * (0.8 + 0.4 * jitter())


async def mark_failed(
    db: Database,
    item: Claimed,
    worker_id: str,
    error: str,
    *,
    permanent: bool,
    max_attempts: int,
    backoff_base: float,
    backoff_cap: float,
    now: datetime | None = None,
) -> bool:
    """Record a failed attempt: due again after a backoff, or given up (dead) after the last attempt or a
    permanent refusal. True when it is now dead. Only while ``worker_id`` still holds the lease: if it
    ran out, the row already belongs to the next attempt."""
    now = now or utcnow()
    failures = item.attempts + 1
    dead = permanent or failures >= max_attempts
    values: dict[str, Any] = {
        "attempts": failures,
        "last_error": error[:2000],
        "claimed_by": None,
        "claimed_until": None,
    }
    if dead:
        values["dead_at"] = now
    else:
        delay = backoff_seconds(failures, base=backoff_base, cap=backoff_cap)
        values["available_at"] = now + timedelta(seconds=delay)
    async with db.writing() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == item.id, OutboxMessage.claimed_by == worker_id, *pending())
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return dead


async def release(db: Database, row_ids: Collection[str], worker_id: str) -> None:
    """Give back leased rows not attempted (the worker stops, or too little of its lease is left):
    due again at once instead of when the lease would have run out."""
    if not row_ids:
        return
    async with db.writing() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(row_ids)), OutboxMessage.claimed_by == worker_id, *pending())
            .values(claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )


# --- Retention ------------------------------------------------------------------------------------------

PRUNE_BATCH = 500


async def prune(
    db: Database,
    retention_days: int,
    *,
    batch: int = PRUNE_BATCH,
    pause_seconds: float = 0.05,
    now: datetime | None = None,
) -> int:
    """Delete rows sent or given up more than ``retention_days`` ago: each keeps the whole message
    (recipients, user names), so it is kept only for inspecting recent deliveries. A pending row is
    never deleted, however old. ``batch`` rows per short transaction, read by the partial indexes on
    ``sent_at`` and ``dead_at``, with a pause between, so enqueueing is never held up. How many were
    deleted."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    deleted = 0
    for column in (OutboxMessage.sent_at, OutboxMessage.dead_at):
        oldest = select(OutboxMessage.id).where(column < cutoff).order_by(column).limit(batch)
        while True:
            async with db.writing() as session:
                ids = list((await session.scalars(oldest)).all())
                if ids:
                    await session.execute(
                        delete(OutboxMessage)
                        .where(OutboxMessage.id.in_(ids))
                        .execution_options(synchronize_session=False)
                    )
            deleted += len(ids)
            if len(ids) < batch:
                break
            await asyncio.sleep(pause_seconds)
    return deleted
