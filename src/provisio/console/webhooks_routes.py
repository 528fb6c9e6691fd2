"""Workspace > Webhooks: where this workspace's events are delivered, and how the latest deliveries went.
Reading only; see ``provisio.console.webhooks_page``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from provisio.console.deps import admin_workspace, require_admin
from provisio.console.sessions import SignedIn
from provisio.console.templating import render
from provisio.console.webhooks_page import PAGE, webhooks_page_context
from provisio.db.engine import Database

router = APIRouter(include_in_schema=False)


def _before(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


@router.get(PAGE)
async def webhooks_page(
    request: Request, workspace_key: str, before: str = "", who: SignedIn = Depends(require_admin)
) -> Response:
    workspace = await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    async with db.reading() as session:
        context = await webhooks_page_context(session, workspace, before=_before(before))
    context["who"] = who
    return render(request, "webhooks.html", context)
