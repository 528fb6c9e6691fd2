"""What the Provisioning log page, its event view and its CSV export show (the query is
``provisio.domain.provisioning_log``)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.console.workspace_forms import WORKSPACE
from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent, Workspace
from provisio.domain import provisioning_log
from provisio.domain.events import OUTCOMES
from provisio.domain.provisioning_log import LogFilter

PAGE = WORKSPACE + "/log"
EVENT = PAGE + "/{event_id}"
CSV = WORKSPACE + "/log.csv"

CSV_COLUMNS = [
    ("id", lambda e: e.id),
    ("at", lambda e: e.at.isoformat()),
    ("last_at", lambda e: e.last_at.isoformat() if e.last_at else ""),
    ("repeats", lambda e: e.repeats),
    ("operation", lambda e: e.action),
    ("outcome", lambda e: e.outcome),
    ("status", lambda e: e.status),
    ("scim_type", lambda e: e.scim_type or ""),
    ("member_id", lambda e: e.member_id or ""),
    ("user_name", lambda e: e.user_name or ""),
    ("actor", lambda e: e.actor),
    ("credential", lambda e: e.credential or ""),
    ("detail", lambda e: e.detail or ""),
    ("request_id", lambda e: e.request_id or ""),
    ("duration_ms", lambda e: "" if e.duration_ms is None else e.duration_ms),
    ("user_agent", lambda e: e.user_agent or ""),
]
# A cell a spreadsheet would run as a formula: what an IdP or a stranger sent (a userName, a detail
# quoting it) is shown as text by a leading apostrophe instead.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_text(rows: list[list[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


async def csv_lines(db: Database, workspace_id: str, filters: LogFilter) -> AsyncIterator[str]:
    """The export, one keyset batch at a time (``provisioning_log.batches``): streamed, never built."""
    yield _csv_text([[name for name, _ in CSV_COLUMNS]])
    async for batch in provisioning_log.batches(db, workspace_id, filters):
        yield _csv_text([[safe_cell(value(e)) for _, value in CSV_COLUMNS] for e in batch])


def _link(path: str, filters: LogFilter, **extra: str) -> str:
    query = filters.query() + [(k, v) for k, v in extra.items() if v]
    return f"{path}?{urlencode(query)}" if query else path


async def log_page_context(
    session: AsyncSession,
    workspace: Workspace,
    filters: LogFilter,
    *,
    before: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    path = PAGE.format(workspace_key=workspace.key)
    found = await provisioning_log.page(session, workspace.id, filters, before=before)
    return {
        "workspace": workspace,
        "nav_current": "log",
        "events": found.events,
        "filters": filters,
        "outcomes": OUTCOMES,
        "operations": provisioning_log.OPERATIONS,
        "page_path": path,
        "first_url": _link(path, filters) if before is not None else None,
        "next_url": _link(path, filters, before=str(found.next_before)) if found.next_before else None,
        "csv_url": _link(CSV.format(workspace_key=workspace.key), filters),
        "error": error,
    }


def event_context(workspace: Workspace, event: ProvisioningEvent) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "nav_current": "log",
        "event": event,
        "page_path": PAGE.format(workspace_key=workspace.key),
    }
