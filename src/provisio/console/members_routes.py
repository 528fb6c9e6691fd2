"""Workspace > Members: search, status (members removed by the IdP too) and seat use, IdP-managed members
shown read-only, and members added by hand, which admins can deactivate and reactivate after a
confirmation step. Every rule lives in ``domain.members``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from provisio.console.confirm import Confirmation, render_confirmation
from provisio.console.deps import admin_workspace, require_admin
from provisio.console.members_page import (
    CONFIRM,
    PAGE,
    console_actor,
    console_event_actor,
    members_page_context,
)
from provisio.console.sessions import SignedIn
from provisio.console.templating import render
from provisio.console.workspace_forms import STATUS, Change, add_form_routes, page_number, text
from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.domain import console_members as member_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError

router = APIRouter(include_in_schema=False)
KEEP = ("q", "status", "page")  # the list the admin was looking at, kept across a form


@router.get(PAGE)
async def members_page(
    request: Request,
    workspace_key: str,
    q: str = "",
    status: str = "",
    page: str | None = None,
    notice: str | None = None,
    member: str | None = None,
    who: SignedIn = Depends(require_admin),
) -> Response:
    await admin_workspace(request, workspace_key, who)
    return await _render(
        request,
        workspace_key,
        who,
        200,
        q=q,
        status=status,
        page=page_number(page),
        notice=notice,
        member=member,
    )


@router.get(PAGE + "/{action}")
async def confirm_member_change(
    request: Request,
    workspace_key: str,
    action: str,
    member_id: str = "",
    q: str = "",
    status: str = "",
    page: str = "",
    who: SignedIn = Depends(require_admin),
) -> Response:
    """The confirmation step of Deactivate and Reactivate: what will happen, and the form that does it."""
    await admin_workspace(request, workspace_key, who)
    if action not in CONFIRM:
        return await _render(request, workspace_key, who, 404, error="No such page.")
    db: Database = request.app.state.db
    values = {"q": q, "status": status, "page": page, "member_id": member_id}
    try:
        async with db.reading() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            member = await member_service.editable_member(session, workspace, member_id)
    except DomainError as exc:
        extra = {"error": exc.detail, "error_field": "member-list", "values": values}
        return await _error_page(request, workspace_key, who, STATUS.get(exc.kind, 400), extra)
    title, message, button = CONFIRM[action]
    path = PAGE.format(workspace_key=workspace_key)
    confirm = Confirmation(
        title=title.format(member=member.user_name),
        message=message.format(member=member.user_name),
        button=button,
        action=f"{path}/{action}",
        fields=[("member_id", member.id), ("q", q), ("status", status), ("page", page)],
        page_name="Members",
        page_path=path,
    )
    return render_confirmation(request, workspace, who, confirm, nav="members")


async def _render(request: Request, workspace_key: str, who: SignedIn, code: int, **extra: Any) -> Response:
    db: Database = request.app.state.db
    async with db.reading() as session:
        workspace = await workspace_service.require_workspace(session, workspace_key)
        context = await members_page_context(session, workspace, **extra)
    context["who"] = who
    return render(request, "members.html", context, code)


async def _error_page(
    request: Request, workspace_key: str, who: SignedIn, status: int, extra: dict[str, Any]
) -> Response:
    values: dict[str, str] = extra.get("values") or {}
    listing = {
        "q": values.get("q", ""),
        "status": values.get("status", ""),
        "page": page_number(values.get("page")),
    }
    return await _render(request, workspace_key, who, status, **listing, **extra)


def _back(form: FormData, notice: str, member_id: str) -> dict[str, str]:
    query = {k: text(form, k) for k in KEEP if text(form, k)}
    return {**query, "notice": notice, "member": member_id}


async def _add(session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn) -> dict[str, str]:
    member = await member_service.add_member(
        session,
        workspace,
        email=text(form, "email"),
        name=text(form, "name"),
        actor=console_actor(who),
        by=console_event_actor(who),
    )
    return {"notice": "added", "member": member.id}


async def _set_active(
    session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn, active: bool
) -> dict[str, str]:
    member_id = text(form, "member_id")
    changed = await member_service.set_active(
        session, workspace, member_id, active, actor=console_actor(who), by=console_event_actor(who)
    )
    if not changed:
        return _back(form, "unchanged", member_id)
    return _back(form, "reactivated" if active else "deactivated", member_id)


async def _deactivate(
    session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn
) -> dict[str, str]:
    return await _set_active(session, workspace, form, who, False)


async def _reactivate(
    session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn
) -> dict[str, str]:
    return await _set_active(session, workspace, form, who, True)


FORMS: dict[str, tuple[Change, str]] = {
    "add": (_add, "add-member"),
    "deactivate": (_deactivate, "member-list"),
    "reactivate": (_reactivate, "member-list"),
}
add_form_routes(router, PAGE, FORMS, _error_page, "members")
