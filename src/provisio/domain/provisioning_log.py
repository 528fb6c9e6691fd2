"""Reading and pruning the provisioning log (``provisio.domain.events`` writes it): one workspace's
events newest first, filtered, in pages of ids (keyset: ``id < before``), which costs the same on the
first page as on the thousandth; and old events deleted in small batches that never hold SCIM writes up.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent, Workspace, utcnow
from provisio.domain.errors import DomainError, Kind
from provisio.domain.events import OUTCOMES

log = structlog.get_logger("provisio.events")

E = ProvisioningEvent
PAGE_SIZE = 50
MAX_PAGE = 1000
EXPORT_BATCH = 1000
PRUNE_BATCH = 1000
_MEMBER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Operations the SCIM API logs (provisio.scim.routes), and the console's own changes.
OPERATIONS = (
    "create",
    "update",
    "patch",
    "deactivate",
    "delete",
    "get",
    "list",
    "search",
    "discovery",
    "request",
)


@dataclass(frozen=True)
class LogFilter:
    """What the console, the CSV export and the CLI narrow the log to. ``member`` is a member id
    (exact) or the start of a userName (case-sensitive); the times bound ``at`` (from inclusive, to
    exclusive)."""

    outcome: str | None = None
    operation: str | None = None
    member: str | None = None
    credential: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        outcome: str = "",
        operation: str = "",
        member: str = "",
        credential: str = "",
        since: str = "",
        until: str = "",
    ) -> LogFilter:
        """From text as typed (query strings, CLI options); DomainError (invalid) for what cannot be
        a filter."""
        outcome = outcome.strip().lower()
        if outcome and outcome not in OUTCOMES:
            raise DomainError(Kind.INVALID, f"Outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}.")
        return cls(
            outcome=outcome or None,
            operation=operation.strip()[:40] or None,
            member=member.strip()[:512] or None,
            credential=credential.strip()[:200] or None,
            since=parse_time(since, "From"),
            until=parse_time(until, "To"),
        )

    def query(self) -> list[tuple[str, str]]:
        """As query-string pairs, for links that keep the filters."""
        pairs = [
            ("outcome", self.outcome or ""),
            ("operation", self.operation or ""),
            ("member", self.member or ""),
            ("credential", self.credential or ""),
            ("from", _text(self.since)),
            ("to", _text(self.until)),
        ]
        return [(k, v) for k, v in pairs if v]

    @property
    def active(self) -> bool:
        return bool(self.query())


def _text(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M") if value else ""


def parse_time(text: str, name: str) -> datetime | None:
    """A UTC time as an HTML datetime-local field or a person sends it (``2026-12-07``,
    ``2026-12-07T14:05``, ISO 8601 with an offset)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError(
            Kind.INVALID, f"{name} must be a date and time such as 2026-12-07T14:05 (UTC), not {text[:40]!r}."
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _where(workspace_id: str, filters: LogFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [E.workspace_id == workspace_id]
    if filters.outcome:
        clauses.append(E.outcome == filters.outcome)
    if filters.operation:
        clauses.append(E.action == filters.operation)
    if filters.member:
        clauses.extend(_member(filters.member))
    if filters.credential:
        clauses.append(E.credential == filters.credential)
    if filters.since:
        clauses.append(E.at >= filters.since)
    if filters.until:
        clauses.append(E.at < filters.until)
    return clauses


def _member(value: str) -> list[ColumnElement[bool]]:
    if _MEMBER_ID.fullmatch(value):
        return [E.member_id == value]
    # A prefix as a range of the (workspace_id, user_name, id) index: userNames compare by code point
    # on both databases (BINARY in SQLite, COLLATE "C" on PostgreSQL), so the strings that start with
    # ``value`` are exactly those from ``value`` up to its last character's successor.
    last = value[-1]
    if ord(last) == 0x10FFFF:
        return [E.user_name >= value]
    return [E.user_name >= value, E.user_name < value[:-1] + chr(ord(last) + 1)]


@dataclass(frozen=True)
class LogPage:
    events: list[ProvisioningEvent]
    next_before: int | None  # the ``before`` of the next (older) page, None on the last


def _statement(workspace_id: str, filters: LogFilter, before: int | None, limit: int) -> Any:
    clauses = _where(workspace_id, filters)
    if before is not None:
        clauses.append(E.id < before)
    return select(E).where(*clauses).order_by(E.id.desc()).limit(limit)


async def page(
    session: AsyncSession,
    workspace_id: str,
    filters: LogFilter,
    *,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> LogPage:
    """Events older than ``before`` (an id), newest first; one more row is read to know whether there
    is a next page. Ids, not times, order the log: equal times cannot duplicate or skip an event."""
    limit = max(1, min(limit, MAX_PAGE))
    rows = list((await session.scalars(_statement(workspace_id, filters, before, limit + 1))).all())
    events = rows[:limit]
    return LogPage(events, events[-1].id if len(rows) > limit else None)


def not_found() -> DomainError:
    return DomainError(Kind.NOT_FOUND, "No such event in this workspace's provisioning log.")


async def event(session: AsyncSession, workspace_id: str, event_id: int) -> ProvisioningEvent:
    """One event of the workspace: another workspace's is not found, like one that does not exist."""
    found = await session.scalar(select(E).where(E.workspace_id == workspace_id, E.id == event_id))
    if found is None:
        raise not_found()
    return found


async def batches(
    db: Database, workspace_id: str, filters: LogFilter, size: int | None = None
) -> AsyncIterator[list[ProvisioningEvent]]:
    """Every matching event, newest first, one keyset batch per short read: an export of millions of
    events holds neither a connection nor the rows for its whole length."""
    before: int | None = None
    while True:
        async with db.reading() as session:
            found = await page(session, workspace_id, filters, before=before, limit=size or EXPORT_BATCH)
        if found.events:
            yield found.events
        if found.next_before is None:
            return
        before = found.next_before


def _old(cutoff: datetime) -> ColumnElement[bool]:
    # An aggregated row is kept while its latest repeat is recent.
    return (E.last_at.is_(None)) | (E.last_at < cutoff)


def prune_candidates(workspace_id: str, cutoff: datetime, batch: int = PRUNE_BATCH) -> Any:
    """Ids of up to ``batch`` of a workspace's oldest events older than ``cutoff``: a range of the
    (workspace_id, at) index, read in its order, which finds nothing at once when nothing is old."""
    return (
        select(E.id)
        .where(E.workspace_id == workspace_id, E.at < cutoff, _old(cutoff))
        .order_by(E.at)
        .limit(batch)
    )


async def prune(
    db: Database,
    retention_days: int,
    *,
    batch: int = PRUNE_BATCH,
    pause_seconds: float = 0.05,
    now: datetime | None = None,
) -> int:
    """Delete events older than ``retention_days`` (by their latest time), workspace by workspace,
    ``batch`` rows per short transaction with a pause between, so SCIM writes are never queued behind a
    long delete. The ids are chosen by a read (a table scan in SQLite's write transaction would hold
    every writer up); the write deletes them by primary key, checking again that they are old, since
    an aggregated row may have been repeated since. Returns how many were deleted."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    async with db.reading() as session:
        workspace_ids = list((await session.scalars(select(Workspace.id).order_by(Workspace.id))).all())
    deleted = 0
    for workspace_id in workspace_ids:
        while True:
            async with db.reading() as session:
                ids = list((await session.scalars(prune_candidates(workspace_id, cutoff, batch))).all())
            if not ids:
                break
            async with db.writing() as session:
                result = await session.execute(delete(E).where(E.id.in_(ids), E.at < cutoff, _old(cutoff)))
            deleted += int(getattr(result, "rowcount", 0) or 0)
            if len(ids) < batch:
                break
            await asyncio.sleep(pause_seconds)
    return deleted


# The server's first pruning waits this long, so that a start-up is not slowed by it.
FIRST_PRUNE_DELAY_SECONDS = 60.0


async def prune_periodically(db: Database, settings: Settings) -> None:
    """The server's background pruning (``PROVISIO_LOG_PRUNE_IN_BACKGROUND``): a failed run is logged
    and tried again at the next interval."""
    delay = min(FIRST_PRUNE_DELAY_SECONDS, settings.log_prune_interval_seconds)
    while True:
        await asyncio.sleep(delay)
        delay = settings.log_prune_interval_seconds
        try:
            deleted = await prune(db, settings.log_retention_days)
        except Exception:
            log.warning("events.prune_failed", exc_info=True)
            continue
        if deleted:
            log.info("events.pruned", deleted=deleted, retention_days=settings.log_retention_days)
