"""What the Webhooks page shows: the endpoints that receive a workspace's events and the recent attempts
to deliver them (the rules and queries are ``provisio.domain.webhooks``). The page only reads: endpoints
are the host application's, managed through ``/api/v1/webhook-endpoints``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.console.workspace_forms import WORKSPACE
from provisio.db.models import WebhookAttempt, Workspace
from provisio.domain import webhooks

PAGE = WORKSPACE + "/webhooks"
ATTEMPTS_PER_PAGE = 50
# Of the first KiB of a receiver's answer kept with each attempt, what the table shows at once.
SHOWN_BODY_CHARS = 120


@dataclass(frozen=True)
class ShownEndpoint:
    id: str
    url: str  # without its query, which may carry the receiver's token
    scope: str
    types: str
    disabled_at: Any
    disabled_reason: str | None
    description: str


@dataclass(frozen=True)
class ShownAttempt:
    attempt: WebhookAttempt
    url: str
    body_start: str
    body_more: bool


def _types(types: list[str]) -> str:
    return ", ".join(types) if types else "All event types"


async def webhooks_page_context(
    session: AsyncSession, workspace: Workspace, *, before: int | None = None
) -> dict[str, Any]:
    found = await webhooks.endpoints_for_workspace(session, workspace.id)
    endpoints = [
        ShownEndpoint(
            id=e.id,
            url=webhooks.shown_url(e.url),
            scope="This workspace" if e.workspace_id else "Every workspace (the service's own)",
            types=_types(list(e.event_types)),
            disabled_at=e.disabled_at,
            disabled_reason=e.disabled_reason,
            description=e.description,
        )
        for e in found
    ]
    urls = {e.id: e.url for e in endpoints}
    rows = await webhooks.workspace_attempts(
        session, workspace.id, before=before, limit=ATTEMPTS_PER_PAGE + 1
    )
    attempts = [
        ShownAttempt(
            attempt=a,
            url=urls.get(a.endpoint_id, a.endpoint_id),
            body_start=(a.response_body or "")[:SHOWN_BODY_CHARS],
            body_more=len(a.response_body or "") > SHOWN_BODY_CHARS,
        )
        for a in rows[:ATTEMPTS_PER_PAGE]
    ]
    path = PAGE.format(workspace_key=workspace.key)
    older = rows[ATTEMPTS_PER_PAGE - 1].id if len(rows) > ATTEMPTS_PER_PAGE else None
    return {
        "workspace": workspace,
        "nav_current": "webhooks",
        "endpoints": endpoints,
        "attempts": attempts,
        "page_path": path,
        "first_url": path if before is not None else None,
        "next_url": f"{path}?before={older}" if older is not None else None,
    }
