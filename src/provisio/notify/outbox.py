"""The outbox: notifications written in the transaction of the change that causes them.

``enqueue`` adds a row with the caller's session, so the notification exists exactly when the change
commits (a rollback takes it away too). A worker (``provisio.notify.worker``) then claims due rows with a
lease, delivers them and marks them sent; see ``claim_due`` for how the two databases claim.

A row is *pending* until it is sent or given up (dead); a pending row is *due* once its
``available_at`` has passed and no live lease holds it. A lease that runs out (its worker died between
claiming and marking) makes the row due again, so delivery is at least once.

Ordered rows (webhooks: one ordering key per endpoint and workspace) leave one at a time, in the order
they were enqueued: a row is due only when no earlier pending row of its key exists. That is kept when
rows are written rather than searched for at every claim: ``enqueue_ordered`` makes a row the *head*
of its key (due as usual) when the key has no pending row, else it *waits* (``available_at`` is
``WAITING``, beyond every claim's reach, at the far end of the pending index); when the head is sent
or given up, the same transaction makes the next row of its key the head. So a claim never walks the
rows queued behind a failing head: a key that fails holds up only itself. The claim still refuses a row
with an earlier pending row of its key (one probe of ``ix_outbox_ordering`` per head), so no slip
could ever send two rows of a key at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, delete, event, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from provisio.db.engine import Database
from provisio.db.models import OutboxMessage, new_id, utcnow

MAIL = "mail"
WEBHOOK = "webhook"
KINDS = frozenset({MAIL, WEBHOOK})
# The ``available_at`` of a row that waits for an earlier row of its ordering key: never reached by a
# claim; the row becomes due when the one before it is sent or given up.
WAITING = datetime(9999, 1, 1, tzinfo=UTC)

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
    _wake_after_commit(session)
    return str(inserted)


def _wake_after_commit(session: AsyncSession) -> None:
    if _listeners:
        event.listen(session.sync_session, "after_commit", _wake, once=True)


@dataclass(frozen=True)
class Ordered:
    """A row for ``enqueue_ordered``."""

    ordering_key: str
    payload: dict[str, Any]
    workspace_id: str | None = None


def _pending_of(key: str) -> list[ColumnElement[bool]]:
    return [OutboxMessage.ordering_key == key, *pending()]


async def _locked_tail(session: AsyncSession, key: str) -> int | None:
    """The ``ordering_seq`` of the last pending row of ``key``, locked on PostgreSQL: while this
    transaction runs, that row cannot be marked done, so a head being sent right now either finishes
    first (and is no longer pending here) or waits for this commit and then sees the rows behind it."""
    query = (
        select(OutboxMessage.ordering_seq)
        .where(*_pending_of(key))
        .order_by(OutboxMessage.ordering_seq.desc())
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    seq = await session.scalar(query)
    return None if seq is None else int(seq)


async def enqueue_ordered(session: AsyncSession, *, kind: str, rows: Sequence[Ordered]) -> int:
    """Add ``rows`` in the caller's transaction, each after every pending row of its ordering key (and
    after the rows before it in ``rows``); how many were added.

    Callers must not enqueue to one key from two transactions at once (the webhook fan-out and its
    replays hold one lock for that): two could both find a key empty and both make a head."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    if not rows:
        return 0
    now = utcnow()
    tails: dict[str, int | None] = {}
    values: list[dict[str, Any]] = []
    for row in rows:
        key = row.ordering_key
        if key not in tails:
            tails[key] = await _locked_tail(session, key)
        tail = tails[key]
        seq = 1 if tail is None else tail + 1
        tails[key] = seq
        values.append(
            {
                "id": new_id(),
                "kind": kind,
                "payload": orjson.dumps(row.payload).decode(),
                "workspace_id": row.workspace_id,
                "dedupe_key": None,
                "created_at": now,
                "available_at": now if tail is None else WAITING,
                "attempts": 0,
                "ordering_key": key,
                "ordering_seq": seq,
            }
        )
    await session.execute(insert(OutboxMessage), values)
    _wake_after_commit(session)
    return len(values)


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
    ordering_key: str | None = None


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
        .where(*due(now), OutboxMessage.kind.in_(list(kinds)), _first_of_its_key())
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
            OutboxMessage.ordering_key,
        )
        .execution_options(synchronize_session=False)
    )
    async with db.writing() as session:
        rows = sorted((await session.execute(statement)).all(), key=lambda row: row.available_at)
    return [_claimed(row, until) for row in rows]


def _claimed(row: Any, until: datetime) -> Claimed:
    return Claimed(
        id=row.id,
        kind=row.kind,
        payload=orjson.loads(row.payload),
        workspace_id=row.workspace_id,
        created_at=row.created_at,
        attempts=row.attempts,
        claimed_until=until,
        ordering_key=row.ordering_key,
    )


def _first_of_its_key() -> ColumnElement[bool]:
    """Unordered, or no earlier row of its ordering key is pending."""
    earlier = aliased(OutboxMessage)
    return or_(
        OutboxMessage.ordering_key.is_(None),
        ~exists().where(
            earlier.ordering_key == OutboxMessage.ordering_key,
            earlier.ordering_seq < OutboxMessage.ordering_seq,
            earlier.sent_at.is_(None),
            earlier.dead_at.is_(None),
        ),
    )


async def promote_next(
    session: AsyncSession,
    ordering_key: str,
    *,
    now: datetime,
    claim_for: str | None = None,
    lease_seconds: float = 0.0,
) -> Claimed | None:
    """Make the next waiting row of ``ordering_key`` its head, in the caller's transaction (which has
    just marked the previous head sent or given up). ``claim_for``: lease it to that worker at once
    and return it, so that the worker delivers it without another claim."""
    following = (
        select(OutboxMessage.id)
        .where(*_pending_of(ordering_key), OutboxMessage.available_at == WAITING)
        .order_by(OutboxMessage.ordering_seq)
        .limit(1)
        .scalar_subquery()
    )
    values: dict[str, Any] = {"available_at": now}
    until = now + timedelta(seconds=lease_seconds)
    if claim_for is not None:
        values |= {"claimed_by": claim_for, "claimed_until": until}
    row = (
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == following, OutboxMessage.available_at == WAITING, *pending())
            .values(**values)
            .returning(
                OutboxMessage.id,
                OutboxMessage.kind,
                OutboxMessage.payload,
                OutboxMessage.workspace_id,
                OutboxMessage.created_at,
                OutboxMessage.attempts,
                OutboxMessage.ordering_key,
            )
            .execution_options(synchronize_session=False)
        )
    ).first()
    if row is None:
        return None
    if claim_for is None:
        _wake_after_commit(session)
        return None
    return _claimed(row, until)


def _key_range(prefix: str) -> list[ColumnElement[bool]]:
    """Ordering keys that start with ``prefix`` (ASCII, compared by code point on both databases), as
    one range of ``ix_outbox_ordering``."""
    if not prefix or not prefix.isascii() or prefix[-1] == "\x7f":
        raise ValueError("an ordering key prefix is ASCII and does not end in DEL")
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return [OutboxMessage.ordering_key >= prefix, OutboxMessage.ordering_key < end]


async def give_up_ordered(session: AsyncSession, prefix: str, reason: str, *, now: datetime) -> int:
    """Give up (mark dead, with ``reason``) every pending row whose ordering key starts with
    ``prefix``, in the caller's transaction; how many. The rows are locked in key order, the order
    in which a head's completion locks its key's rows, so the two never deadlock. A row in flight is
    given up too: its worker's outcome no longer changes it."""
    picked = select(OutboxMessage.id).where(*_key_range(prefix), *pending())
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.order_by(OutboxMessage.ordering_key, OutboxMessage.ordering_seq).with_for_update()
    ids = list((await session.scalars(picked)).all())
    for start in range(0, len(ids), 500):
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids[start : start + 500]))
            .values(dead_at=now, last_error=reason[:2000], claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    return len(ids)


async def repair_orphans(db: Database, *, now: datetime | None = None, limit: int = 500) -> int:
    """Make a head of every ordering key whose pending rows all wait (none can become due). The
    writes above never leave one; this is the safety net the worker runs now and then. How many keys
    it repaired."""
    now = now or utcnow()
    head = aliased(OutboxMessage)
    orphaned = (
        select(OutboxMessage.ordering_key)
        .where(
            OutboxMessage.ordering_key.is_not(None),
            *pending(),
            OutboxMessage.available_at == WAITING,
            ~exists().where(
                head.ordering_key == OutboxMessage.ordering_key,
                head.sent_at.is_(None),
                head.dead_at.is_(None),
                head.available_at != WAITING,
            ),
        )
        .distinct()
        .limit(limit)
    )
    async with db.reading() as session:
        keys = [key for key in (await session.scalars(orphaned)).all() if key is not None]
    repaired = 0
    for key in keys:
        async with db.writing() as session:
            live = await session.scalar(
                select(func.count()).where(*_pending_of(key), OutboxMessage.available_at != WAITING)
            )
            if not live:
                await promote_next(session, key, now=now)
                repaired += 1
    return repaired


SCRUBBED = '{"scrubbed": "sent; it carried a secret"}'


async def mark_sent(
    db: Database,
    row_id: str,
    *,
    now: datetime | None = None,
    scrub: bool = False,
    ordering_key: str | None = None,
) -> None:
    """Delivered. Marked whoever holds the lease now: the delivery happened either way, and a row
    marked sent is never taken again. ``scrub``: the payload carried a secret, which goes with it.
    ``ordering_key``: the row's, whose next row becomes due."""
    async with db.writing() as session:
        await mark_sent_in(session, row_id, now=now or utcnow(), scrub=scrub, ordering_key=ordering_key)


async def mark_sent_in(
    session: AsyncSession, row_id: str, *, now: datetime, scrub: bool = False, ordering_key: str | None = None
) -> bool:
    """``mark_sent`` in the caller's transaction; whether this marked it (it was not marked before)."""
    values: dict[str, Any] = {"sent_at": now, "claimed_by": None, "claimed_until": None, "last_error": None}
    if scrub:
        values["payload"] = SCRUBBED
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.sent_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    marked = bool(getattr(result, "rowcount", 0))
    if marked and ordering_key is not None:
        await promote_next(session, ordering_key, now=now)
    return marked


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
    retry_at = None
    if not dead:
        retry_at = now + timedelta(seconds=backoff_seconds(failures, base=backoff_base, cap=backoff_cap))
    async with db.writing() as session:
        await mark_failed_in(session, item, worker_id, error, retry_at=retry_at, now=now)
    return dead


async def mark_failed_in(
    session: AsyncSession,
    item: Claimed,
    worker_id: str,
    error: str,
    *,
    retry_at: datetime | None,
    now: datetime,
) -> bool:
    """A failed attempt in the caller's transaction: due again at ``retry_at``, or given up (None), and
    then the next row of its ordering key is due. Only while ``worker_id`` holds the lease; whether it
    did."""
    values: dict[str, Any] = {
        "attempts": item.attempts + 1,
        "last_error": error[:2000],
        "claimed_by": None,
        "claimed_until": None,
    }
    if retry_at is None:
        values["dead_at"] = now
    else:
        values["available_at"] = retry_at
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == item.id, OutboxMessage.claimed_by == worker_id, *pending())
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    marked = bool(getattr(result, "rowcount", 0))
    if marked and retry_at is None and item.ordering_key is not None:
        await promote_next(session, item.ordering_key, now=now)
    return marked


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
