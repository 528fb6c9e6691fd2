"""Workspace settings > Billing & seats: seat use, licence auto-charge and its maximum (the same
settings as the SCIM page, through the same service), buying seats by hand, and the seat ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from provisio.console.billing_page import PAGE, billing_page_context
from provisio.console.deps import admin_workspace, require_admin
from provisio.console.members_page import console_actor, console_event_actor
from provisio.console.sessions import SignedIn
from provisio.console.templating import render
from provisio.console.workspace_forms import (
    Change,
    add_form_routes,
    page_number,
    save_license_form,
    text,
    whole_number,
)
from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.domain import seats as seat_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Kind

router = APIRouter(include_in_schema=False)
MAX_REASON = 200


@router.get(PAGE)
async def billing_page(
    request: Request,
    workspace_key: str,
    page: str | None = None,
    notice: str | None = None,
    who: SignedIn = Depends(require_admin),
) -> Response:
    await admin_workspace(request, workspace_key, who)
    return await _render(request, workspace_key, who, 200, page=page_number(page), notice=notice)


async def _render(request: Request, workspace_key: str, who: SignedIn, code: int, **extra: Any) -> Response:
    db: Database = request.app.state.db
    async with db.reading() as session:
        workspace = await workspace_service.require_workspace(session, workspace_key)
        context = await billing_page_context(session, workspace, **extra)
    context["who"] = who
    return render(request, "billing.html", context, code)


async def _error_page(
    request: Request, workspace_key: str, who: SignedIn, status: int, extra: dict[str, Any]
) -> Response:
    return await _render(request, workspace_key, who, status, **extra)


async def _buy(session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn) -> dict[str, str]:
    count = whole_number(text(form, "count"), "The number of seats to buy", minimum=1)
    reason = " ".join(text(form, "reason").split())
    if len(reason) > MAX_REASON:
        raise DomainError(Kind.INVALID, f"Keep the note under {MAX_REASON} characters.")
    await seat_service.buy_seats(
        session, workspace, count, actor=console_actor(who), by=console_event_actor(who), reason=reason
    )
    return {"notice": "bought"}


async def _license(
    session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn
) -> dict[str, str]:
    await save_license_form(session, workspace, form)
    return {"notice": "license"}


FORMS: dict[str, tuple[Change, str]] = {
    "buy": (_buy, "buy-seats"),
    "license": (_license, "license"),
}
add_form_routes(router, PAGE, FORMS, _error_page, "billing")
