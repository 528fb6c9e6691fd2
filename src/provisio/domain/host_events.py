"""Host events: what the host application learns of every change, in an order no reader can miss.

``emit`` writes an event with the caller's session, so it exists exactly when the change commits. The
events API and the webhook fan-out read them with ``read_after`` from a ``Position``, oldest first.

The order is ``(txid, seq)`` (see ``provisio.db.models.HostEvent``). On PostgreSQL ``txid`` is the
writing transaction's id and a read returns only events of transactions older than the oldest one
still running (the snapshot's *xmin*): every such transaction has finished, so no event can commit
later at a position a reader has already passed. On SQLite one writer at a time commits ``seq`` in
order and ``txid`` is 0. A long transaction anywhere on the PostgreSQL server holds readers back
while it runs; it delays events, it never loses them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    literal_column,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from provisio.db.engine import Database
from provisio.db.models import HostEvent, Workspace, utcnow

MEMBER_CREATED = "member.created"
MEMBER_UPDATED = "member.updated"
MEMBER_DEACTIVATED = "member.deactivated"
MEMBER_REACTIVATED = "member.reactivated"
MEMBER_DELETED = "member.deleted"
WORKSPACE_SCIM_ENABLED = "workspace.scim_enabled"
WORKSPACE_SCIM_DISABLED = "workspace.scim_disabled"
SEATS_PURCHASED = "seats.purchased"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        MEMBER_CREATED,
        MEMBER_UPDATED,
        MEMBER_DEACTIVATED,
        MEMBER_REACTIVATED,
        MEMBER_DELETED,
        WORKSPACE_SCIM_ENABLED,
        WORKSPACE_SCIM_DISABLED,
        SEATS_PURCHASED,
    }
)

# Who made a change, as the host sees it.
IDP = "idp"  # an IdP's SCIM client (id: the OAuth client id or the bearer token's id)
ADMIN = "admin"  # a workspace admin in the console (id: the admin's id)
OPERATOR = "operator"  # the deployment's operator: the CLI or an API key (id: the key's id)
SYSTEM = "system"  # provisio itself (a scheduled job)
ACTOR_KINDS = frozenset({IDP, ADMIN, OPERATOR, SYSTEM})


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"unknown actor kind {self.kind!r}")

    def as_json(self) -> dict[str, Any]:
        return {"type": self.kind, "id": self.id, "name": self.name}


# The operator on the command line (an API key is ``Actor(OPERATOR, <key id>, <key name>)``).
CLI_ACTOR = Actor(OPERATOR, None, "cli")


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def _txid(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return literal_column("pg_current_xact_id()::text::bigint")
    return literal_column("0")


def _horizon(dialect: str) -> ColumnElement[bool]:
    """The events a reader may return: those of transactions that can no longer commit."""
    if dialect == "postgresql":
        return HostEvent.txid < literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    return true()


class EventClockBehind(RuntimeError):
    """The PostgreSQL server's transaction ids are below the newest event's: its events would sort
    before events already read, and no poller would ever see them."""


async def check_clock(session: AsyncSession) -> None:
    """Refuse (``EventClockBehind``) a PostgreSQL database whose events were restored, or replicated,
    from another server that had used more transaction ids than this one: checked at start-up, before
    anything writes an event."""
    if session.get_bind().dialect.name != "postgresql":
        return
    row: Any = (
        await session.execute(
            select(func.max(HostEvent.txid), literal_column("pg_current_xact_id()::text::bigint"))
        )
    ).one()
    newest, current = row[0], row[1]
    if newest is None or newest < current:
        return
    epoch = (newest >> 32) + 1
    raise EventClockBehind(
        f"The newest host event was written in transaction {newest}, but this PostgreSQL server is at "
        f"transaction {current}: the database was restored (pg_dump/pg_restore) or replicated from "
        "another server, and new events would sort before the ones pollers and webhooks have read, so "
        "they would never be delivered. Stop every provisio process and the PostgreSQL server, move "
        f"its transaction-id epoch past the events' with `pg_resetwal -e {epoch} <data directory>` "
        "(it changes nothing in the data), start PostgreSQL and then provisio."
    )


def row_values(
    *, type: str, workspace_id: str, actor: Actor, data: dict[str, Any], at: datetime | None = None
) -> dict[str, Any]:
    """The columns of one event but its position (``seq`` and ``txid`` come from the database)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return {
        "id": new_event_id(),
        "type": type,
        "workspace_id": workspace_id,
        "occurred_at": at or utcnow(),
        "actor": actor.as_json(),
        "data": data,
    }


_HOST_TABLE = cast(Table, HostEvent.__table__)
_INSERTS: dict[str, Insert] = {}


def insert_statement(dialect: str) -> Any:
    """An INSERT of event rows that stamps each with its transaction (for statements that insert
    events together with another change, e.g. from a CTE)."""
    statement = _INSERTS.get(dialect)
    if statement is None:
        # Of the table, not the mapped class: a plain INSERT costs a fraction of an ORM bulk insert, and
        # an event is written with every change. Built once per dialect.
        statement = _INSERTS[dialect] = insert(_HOST_TABLE).values(txid=_txid(dialect))
    return statement


_FROM_COLUMNS = ("id", "type", "workspace_id", "occurred_at", "actor", "data")


def insert_from(source: FromClause, dialect: str) -> Insert:
    """``INSERT … SELECT`` of one event per row of ``source`` (a CTE of the change, typically), its
    columns bound as ``host_<column>`` (``from_params``) and stamped with the transaction like
    ``insert_statement``: the change and its event are then one statement."""
    columns = [bindparam(f"host_{name}", type_=_HOST_TABLE.c[name].type) for name in _FROM_COLUMNS]
    return insert(_HOST_TABLE).from_select(
        [*_FROM_COLUMNS, "txid"], select(*columns, _txid(dialect)).select_from(source)
    )


def from_params(values: dict[str, Any]) -> dict[str, Any]:
    """The bound parameters of a statement built by ``insert_from``, from ``row_values``."""
    return {f"host_{name}": values[name] for name in _FROM_COLUMNS}


async def emit(
    session: AsyncSession,
    *,
    type: str,
    workspace_id: str,
    actor: Actor,
    data: dict[str, Any],
    at: datetime | None = None,
) -> str:
    """Write one event in the caller's transaction; its id."""
    values = row_values(type=type, workspace_id=workspace_id, actor=actor, data=data, at=at)
    dialect = session.get_bind().dialect.name
    await session.execute(insert_statement(dialect), [values])
    if _listeners:
        event.listen(session.sync_session, "after_commit", _committed, once=True)
    return str(values["id"])


# Readers in this process that want to know at once when a transaction that emitted commits (the
# webhook fan-out registers one while some endpoint listens), instead of at their next poll.
_listeners: set[Callable[[], None]] = set()


def add_listener(callback: Callable[[], None]) -> None:
    _listeners.add(callback)


def remove_listener(callback: Callable[[], None]) -> None:
    _listeners.discard(callback)


def _committed(_session: Any) -> None:
    for callback in list(_listeners):
        callback()


def committed() -> None:
    """Tell the listeners that an event committed without a session's commit (an autocommit statement
    that inserted it with ``insert_from``)."""
    _committed(None)


@dataclass(frozen=True, order=True)
class Position:
    """A place in the order of events: after the event at (txid, seq)."""

    txid: int
    seq: int

    def encode(self) -> str:
        raw = f"{self.txid}.{self.seq}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        """The position a cursor names; ValueError when it is not one this server made."""
        if not cursor or len(cursor) > 64 or not cursor.isascii():
            raise ValueError("not a cursor")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
            txid_text, seq_text = raw.split(".")
            if not (_canonical(txid_text) and _canonical(seq_text)):
                raise ValueError("not a cursor")
            return cls(int(txid_text), int(seq_text))
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("not a cursor") from exc


_BIGINT_MAX = 2**63 - 1


def _canonical(digits: str) -> bool:
    """A number as ``encode`` writes it: one cursor per position (no leading zeros), within the
    columns' bigint (a larger one would fail in the database, not as a bad cursor)."""
    return (
        digits.isascii()
        and digits.isdigit()
        and (digits == "0" or not digits.startswith("0"))
        and int(digits) <= _BIGINT_MAX
    )


# Before every event: seq starts at 1 on SQLite, and PostgreSQL's first transaction id is 3. A real
# position, so its cursor is one a poller can be handed back (``Position.decode`` accepts it).
START = Position(0, 0)


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    workspace_id: str
    workspace_key: str
    occurred_at: datetime
    actor: dict[str, Any]
    data: dict[str, Any]
    position: Position

    def as_json(self) -> dict[str, Any]:
        """The event as the API and webhooks show it."""
        return {
            "id": self.id,
            "type": self.type,
            "workspace": self.workspace_key,
            "workspace_id": self.workspace_id,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "data": self.data,
        }


_COLUMNS = (
    HostEvent.id,
    HostEvent.type,
    HostEvent.workspace_id,
    Workspace.key,
    HostEvent.occurred_at,
    HostEvent.actor,
    HostEvent.data,
    HostEvent.txid,
    HostEvent.seq,
)


def stored_events() -> Select[Any]:
    """The events with their workspace's key, as ``stored`` reads them (callers add where and order)."""
    return select(*_COLUMNS).join(Workspace, Workspace.id == HostEvent.workspace_id)


def stored(row: Any) -> StoredEvent:
    """A row of ``stored_events``."""
    return StoredEvent(
        id=row.id,
        type=row.type,
        workspace_id=row.workspace_id,
        workspace_key=row.key,
        occurred_at=row.occurred_at,
        actor=row.actor,
        data=row.data,
        position=Position(row.txid, row.seq),
    )


def _select(dialect: str, after: Position) -> Select[Any]:
    return (
        stored_events()
        .where(tuple_(HostEvent.txid, HostEvent.seq) > tuple_(after.txid, after.seq), _horizon(dialect))
        .order_by(HostEvent.txid, HostEvent.seq)
    )


async def read_after(
    session: AsyncSession,
    after: Position = START,
    *,
    limit: int,
    workspace_id: str | None = None,
    types: Collection[str] | None = None,
) -> list[StoredEvent]:
    """Up to ``limit`` events after ``after``, oldest first, that no later commit can precede."""
    dialect = session.get_bind().dialect.name
    query = _select(dialect, after)
    if workspace_id is not None:
        query = query.where(HostEvent.workspace_id == workspace_id)
    if types:
        query = query.where(HostEvent.type.in_(sorted(types)))
    rows = (await session.execute(query.limit(limit))).all()
    return [stored(row) for row in rows]


@dataclass(frozen=True)
class EventPage:
    events: list[StoredEvent]
    next: Position  # where the next read starts
    has_more: bool


async def read_page(
    session: AsyncSession,
    after: Position = START,
    *,
    limit: int,
    workspace_id: str | None = None,
    types: Collection[str] | None = None,
) -> EventPage:
    """Up to ``limit`` events after ``after`` (like ``read_after``) and the position to read from next.

    A page that is not full moves that position to the tail as it was before the read, even past events
    the filter left out: every event at or below that tail was already readable, so the read saw it, and
    a filter that rarely matches does not make every later poll scan the same events again."""
    before = await tail(session)
    found = await read_after(session, after, limit=limit + 1, workspace_id=workspace_id, types=types)
    page = found[:limit]
    has_more = len(found) > limit
    last = page[-1].position if page else after
    return EventPage(page, last if has_more else max(last, before, after), has_more)


def unknown_types(types: Collection[str]) -> list[str]:
    """The names in ``types`` that are not event types, sorted (empty: all are known)."""
    return sorted(set(types) - EVENT_TYPES)


async def tail(session: AsyncSession) -> Position:
    """The position of the newest event a reader may return now (``START`` when there is none). Every
    event not yet readable comes after it: on PostgreSQL its transaction is still running, so its id is
    at least the snapshot's xmin, above every readable event's. A cursor for "from now on"."""
    dialect = session.get_bind().dialect.name
    row = (
        await session.execute(
            select(HostEvent.txid, HostEvent.seq)
            .where(_horizon(dialect))
            .order_by(HostEvent.txid.desc(), HostEvent.seq.desc())
            .limit(1)
        )
    ).first()
    return START if row is None else Position(row.txid, row.seq)


async def get_event(session: AsyncSession, event_id: str) -> StoredEvent | None:
    row = (await session.execute(stored_events().where(HostEvent.id == event_id))).first()
    return None if row is None else stored(row)


async def prune(session: AsyncSession, *, older_than: datetime, limit: int | None = None) -> int:
    """Delete events that occurred before ``older_than`` (the retention), at most ``limit`` of them,
    oldest first; how many went."""
    expired = HostEvent.occurred_at < older_than
    if limit is not None:
        oldest = select(HostEvent.seq).where(expired).order_by(HostEvent.occurred_at).limit(limit)
        expired = HostEvent.seq.in_(oldest.scalar_subquery())
    result = await session.execute(
        delete(HostEvent).where(expired).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


PRUNE_BATCH = 500


async def prune_expired(
    db: Database,
    retention_days: int,
    *,
    batch: int = PRUNE_BATCH,
    max_batches: int | None = None,
    pause_seconds: float = 0.05,
    now: datetime | None = None,
) -> int:
    """Delete events older than ``retention_days``, ``batch`` per short transaction (through the index
    on ``occurred_at``) with a pause between, so that writers are never held up, and at most
    ``max_batches`` transactions (the rest is left for the next call); how many went."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    deleted = 0
    batches = 0
    while True:
        async with db.writing() as session:
            went = await prune(session, older_than=cutoff, limit=batch)
        deleted += went
        batches += 1
        if went < batch or (max_batches is not None and batches >= max_batches):
            return deleted
        await asyncio.sleep(pause_seconds)
