"""The provisioning log: every state change and every failure an IdP caused, per workspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Insert, Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from provisio.db.models import ProvisioningEvent, utcnow

_EVENTS = cast(Table, ProvisioningEvent.__table__)
SUCCESS = "success"  # the outcome of a change that was made (failures are logged too)

# A plain INSERT, not an ORM object: nothing reads the event back, and an ORM flush of one new row costs
# several times the statement (an event is written with every SCIM change).
_INSERT = insert(_EVENTS)


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
