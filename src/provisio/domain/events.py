"""The provisioning log: every state change and every failure an IdP caused, per workspace.

A success is written in the statement or transaction of its change. A failure is written afterwards in
a short transaction of its own that can never fail the request (``record_failure``). Refusals that an
unauthenticated or runaway client can repeat at will (401, 429, and the 403 of a disabled workspace) are
counted instead of listed: one row per workspace, operation, status, credential and minute, whose
``repeats`` and ``last_at`` grow.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

import orjson
import structlog
from sqlalchemy import ColumnElement, Insert, Table, bindparam, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent, utcnow

log = structlog.get_logger("provisio.events")

_EVENTS = cast(Table, ProvisioningEvent.__table__)
SUCCESS = "success"  # the outcome of a change that was made (failures are logged too)
FAILURE = "failure"
OUTCOMES = (SUCCESS, FAILURE)
# Statuses counted on one row per minute rather than one row per request (see the module's docstring).
AGGREGATED_STATUSES = frozenset({401, 429})
BODY_CAP = 4096  # characters of redacted request body kept with an event
REDACTED = "[redacted]"
# Nesting kept of a body (a SCIM resource needs a handful of levels); deeper parts become TOO_DEEP, well
# below orjson's limit of 254 levels and Python's recursion limit.
BODY_DEPTH = 32
TOO_DEEP = "[too deep]"
BODY_NOT_KEPT = "[body not kept]"
# Attribute names whose values are secrets whatever their depth: passwords, tokens, keys, credentials.
_SECRET_NAME = re.compile(r"pass(word|wd|phrase)|secret|token|credential|api[-_]?key|private[-_]?key", re.I)
# Values that look like a secret even under an innocent name: a bearer header, a JWT, a PEM key.
_SECRET_VALUE = re.compile(
    r"^(bearer|basic)\s+\S+|^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.|-----BEGIN [A-Z ]*PRIVATE KEY-----",
    re.IGNORECASE,
)

# A plain INSERT, not an ORM object: nothing reads the event back, and an ORM flush of one new row costs
# several times the statement (an event is written with every SCIM change).
_INSERT = insert(_EVENTS)


def _secret_name(name: object) -> bool:
    return isinstance(name, str) and _SECRET_NAME.search(name) is not None


def _is(key: object, name: str) -> bool:
    return isinstance(key, str) and key.lower() == name


def _redacted(value: Any, depth: int = 0) -> Any:
    if depth >= BODY_DEPTH and isinstance(value, dict | list):
        return TOO_DEEP
    if isinstance(value, dict):
        # A PATCH operation names its attribute in "path": {"path": "password", "value": "…"}; SCIM
        # attribute names are case-insensitive, and so is the PATCH parser ("Path", "VALUE").
        secret_path = any(_is(key, "path") and _secret_name(item) for key, item in value.items())
        return {
            key: REDACTED if secret_path and _is(key, "value") else _redacted(item, depth + 1)
            for key, item in value.items()
            if not _secret_name(key)
        }
    if isinstance(value, list):
        return [_redacted(item, depth + 1) for item in value]
    if isinstance(value, str) and _SECRET_VALUE.search(value):
        return REDACTED
    return value


def redact_body(body: Any, cap: int = BODY_CAP) -> str | None:
    """A request body as the log keeps it: JSON without any attribute named like a secret (passwords,
    tokens, keys: at any depth, in any case, PATCH paths included) or any value that looks like one,
    nested parts deeper than ``BODY_DEPTH`` replaced by a marker, cut to ``cap`` characters with a note
    that it was. Never raises: a body that cannot be kept is replaced by a marker, never the request's
    answer changed by its log."""
    if body is None:
        return None
    try:
        text_ = orjson.dumps(_redacted(body), option=orjson.OPT_NON_STR_KEYS).decode()
    except Exception:
        log.warning("events.body_not_kept", exc_info=True)
        return BODY_NOT_KEPT
    if len(text_) <= cap:
        return text_
    return f"{text_[:cap]}… [cut: {len(text_)} characters, the first {cap} kept]"


@dataclass(frozen=True)
class Event:
    workspace_id: str
    actor: str
    action: str
    outcome: str
    status: int
    member_id: str | None = None
    user_name: str | None = None
    detail: str | None = None
    request_id: str | None = None
    credential: str | None = None
    user_agent: str | None = None
    scim_type: str | None = None
    duration_ms: int | None = None
    request_body: str | None = None
    # Counted on the row of its minute like the AGGREGATED_STATUSES, whatever its status: a refusal
    # its caller repeats at will that is not one of those (a disabled workspace's 403).
    repeatable: bool = False

    def row(self) -> dict[str, Any]:
        # The log must never be what fails: values a client sent are cut to their column's width.
        member_id = self.member_id
        return {
            "workspace_id": self.workspace_id,
            "at": utcnow(),
            "actor": self.actor[:200],
            "action": self.action[:40],
            "outcome": self.outcome,
            "status": self.status,
            "member_id": member_id if member_id is None or len(member_id) <= 36 else None,
            "user_name": self.user_name[:512] if self.user_name else self.user_name,
            "detail": self.detail,
            "request_id": self.request_id[:128] if self.request_id else self.request_id,
            "credential": self.credential[:200] if self.credential else self.credential,
            "user_agent": self.user_agent[:200] if self.user_agent else self.user_agent,
            "scim_type": self.scim_type[:40] if self.scim_type else self.scim_type,
            "duration_ms": self.duration_ms,
            "request_body": self.request_body,
            "repeats": 1,
            "last_at": None,
            "aggregate_key": None,
        }

    def params(self) -> dict[str, Any]:
        """Bound parameters of a statement built by ``insert_from``."""
        return {f"event_{name}": value for name, value in self.row().items() if name not in _FROM_SOURCE}


_FROM_SOURCE = ("member_id", "user_name")


def insert_from(
    source: FromClause, *, member_id: ColumnElement[Any], user_name: ColumnElement[Any]
) -> Insert:
    """``INSERT … SELECT`` of one event per row of ``source``, which names the member: lets a write and
    its event be one statement (see ``provisio.domain.members.replace_member_if_current``)."""
    names = [c.name for c in _EVENTS.columns if c.name != "id"]
    fixed = {name: bindparam(f"event_{name}", type_=_EVENTS.c[name].type) for name in names}
    columns = [{"member_id": member_id, "user_name": user_name}.get(name, fixed[name]) for name in names]
    return insert(_EVENTS).from_select(names, select(*columns).select_from(source))


async def record_event(
    session: AsyncSession,
    *,
    workspace_id: str,
    actor: str,
    action: str,
    outcome: str,
    status: int,
    member_id: str | None = None,
    user_name: str | None = None,
    detail: str | None = None,
) -> None:
    await record(session, Event(workspace_id, actor, action, outcome, status, member_id, user_name, detail))


async def record(session: AsyncSession, event: Event) -> None:
    await session.execute(_INSERT, event.row())


def aggregate_key(event: Event, at: datetime) -> str:
    """The row a repeated refusal is counted on: its minute, status, operation and credential (or, for
    a caller without a known credential, how it was refused). Never anything the caller can vary at will,
    such as the token it sent, so that a flood adds to a bounded number of rows."""
    who = event.credential or event.actor
    return f"{at:%Y-%m-%dT%H:%M}|{event.status}|{event.action}|{who}"[:255]


_REPEAT: dict[str, Insert] = {}


def _repeat_statement(dialect: str) -> Insert:
    """INSERT of an aggregated row, or one more repeat on the row of the same key (ON CONFLICT on the
    partial unique index ``uq_events_workspace_aggregate``): one statement, no race between two repeats."""
    if dialect not in _REPEAT:
        upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_EVENTS)
        _REPEAT[dialect] = upsert.on_conflict_do_update(
            index_elements=["workspace_id", "aggregate_key"],
            index_where=text("aggregate_key IS NOT NULL"),
            set_={"repeats": _EVENTS.c.repeats + 1, "last_at": upsert.excluded.last_at},
        )
    return _REPEAT[dialect]


async def record_repeat(session: AsyncSession, event: Event) -> None:
    row = event.row()
    row.update(last_at=row["at"], aggregate_key=aggregate_key(event, row["at"]))
    await session.execute(_repeat_statement(session.get_bind().dialect.name), row)


async def record_failure(
    db: Database, event: Event, also: Callable[[AsyncSession], Awaitable[None]] | None = None
) -> bool:
    """Write a failure in a short transaction of its own (one statement on PostgreSQL when nothing is
    written with it), after the request's own work ended. ``also`` runs in the same transaction, after
    the event and inside a savepoint: what the failure causes (a notification) commits with it, and if
    it fails the event is still kept. A log write that fails is logged by the server and dropped: the
    IdP still gets its answer. Returns whether the event was written."""
    if event.outcome != FAILURE:
        event = replace(event, outcome=FAILURE)
    try:
        if db.single_statement_writes and also is None:
            async with db.autocommit() as session:
                await _write_failure(session, event)
        else:
            async with db.writing() as session:
                await _write_failure(session, event)
                if also is not None:
                    try:
                        async with session.begin_nested():
                            await also(session)
                    except Exception:
                        log.warning(
                            "events.consequence_failed", workspace_id=event.workspace_id, exc_info=True
                        )
        return True
    except Exception:
        log.warning(
            "events.write_failed",
            workspace_id=event.workspace_id,
            action=event.action,
            status=event.status,
            exc_info=True,
        )
        return False


def aggregated(event: Event) -> bool:
    return event.repeatable or event.status in AGGREGATED_STATUSES


async def _write_failure(session: AsyncSession, event: Event) -> None:
    if aggregated(event):
        await record_repeat(session, event)
    else:
        await record(session, event)
