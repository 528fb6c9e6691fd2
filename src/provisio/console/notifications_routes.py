"""Workspace > Notifications: how often failure e-mails go out, the extra addresses that get them beside
the admins, and who unsubscribed; and the unsubscribe page a failure e-mail links to, which works
without signing in (its signed token is the permission). Every rule lives in
``domain.notifications``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.config import Settings
from provisio.console import csrf
from provisio.console.deps import PageError, admin_workspace, require_admin
from provisio.console.members_page import console_actor
from provisio.console.sessions import SignedIn, signed_in
from provisio.console.templating import render
from provisio.console.workspace_forms import WORKSPACE, Change, add_form_routes, text
from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.domain import admins as account_service
from provisio.domain import notifications as notification_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Kind

router = APIRouter(include_in_schema=False)
PAGE = WORKSPACE + "/notifications"
UNSUBSCRIBE = "/console/notifications/unsubscribe/{token}"

# notice key -> message; {address} is filled in only with one of the workspace's extra addresses.
NOTICES = {
    "window-saved": "Saved: failure digests go out at most once per window.",
    "added": "{address} now gets this workspace's failure e-mails.",
    "removed": "The address no longer gets this workspace's failure e-mails.",
}


@router.get(PAGE)
async def notifications_page(
    request: Request,
    workspace_key: str,
    notice: str | None = None,
    address: str | None = None,
    who: SignedIn = Depends(require_admin),
) -> Response:
    await admin_workspace(request, workspace_key, who)
    return await _render(request, workspace_key, who, 200, notice=notice, address=address)


async def _context(
    session: AsyncSession,
    workspace: Workspace,
    settings: Settings,
    *,
    notice: str | None = None,
    address: str | None = None,
    error: str | None = None,
    error_field: str | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    opted_out = await notification_service.opted_out(session, workspace.id)
    out = {o.email_lower for o in opted_out}
    extras = await notification_service.extra_recipients(session, workspace.id)
    admins = await account_service.workspace_admin_emails(session, workspace.id)
    seconds = await notification_service.digest_seconds(session, workspace.id)
    message = NOTICES.get(notice or "")
    if message and "{address}" in message:
        known = {r.email_lower: r.email for r in extras}
        named = known.get((address or "").lower())
        message = message.format(address=named) if named else None
    return {
        "workspace": workspace,
        "nav_current": "notifications",
        "admins": [(a, a.lower() in out) for a in admins],
        "extras": [(r, r.email_lower in out) for r in extras],
        "opted_out": opted_out,
        "digest_minutes": seconds // 60 if seconds else None,
        "default_minutes": settings.notify_digest_seconds // 60,
        "min_minutes": notification_service.MIN_DIGEST_SECONDS // 60,
        "max_minutes": notification_service.MAX_DIGEST_SECONDS // 60,
        "notice": message,
        "error": error,
        "error_field": error_field,
        "values": values or {},
        "page_path": PAGE.format(workspace_key=workspace.key),
    }


async def _render(request: Request, workspace_key: str, who: SignedIn, code: int, **extra: Any) -> Response:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    async with db.reading() as session:
        workspace = await workspace_service.require_workspace(session, workspace_key)
        context = await _context(session, workspace, settings, **extra)
    context["who"] = who
    return render(request, "notifications.html", context, code)


async def _error_page(
    request: Request, workspace_key: str, who: SignedIn, status: int, extra: dict[str, Any]
) -> Response:
    return await _render(request, workspace_key, who, status, **extra)


async def _window(
    session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn
) -> dict[str, str]:
    raw = text(form, "digest_minutes").strip()
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) < 7):
        raise DomainError(Kind.INVALID, "The digest window must be a whole number of minutes (or empty).")
    await notification_service.set_digest_seconds(session, workspace, int(raw) * 60 if raw else None)
    return {"notice": "window-saved"}


async def _add(session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn) -> dict[str, str]:
    added = await notification_service.add_recipient(
        session, workspace, text(form, "email"), added_by=console_actor(who)
    )
    return {"notice": "added", "address": added.email}


async def _remove(
    session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn
) -> dict[str, str]:
    await notification_service.remove_recipient(session, workspace, text(form, "email"))
    return {"notice": "removed"}


FORMS: dict[str, tuple[Change, str]] = {
    "window": (_window, "digest-window"),
    "add": (_add, "add-address"),
    "remove": (_remove, "addresses"),
}
add_form_routes(router, PAGE, FORMS, _error_page, "notifications")


# --- unsubscribe, without signing in ---------------------------------------------------------------


async def _subscription(request: Request, token: str) -> tuple[notification_service.Unsubscription, str]:
    settings: Settings = request.app.state.settings
    found = notification_service.read_unsubscribe_token(settings.secret_key, token)
    db: Database = request.app.state.db
    name = None
    if found is not None:
        async with db.reading() as session:
            workspace = await session.get(Workspace, found.workspace_id)
            name = workspace.name if workspace else None
    if found is None or name is None:
        raise PageError(
            404,
            "Unsubscribe link not valid",
            "This unsubscribe link is not valid (it may be incomplete, or its workspace was deleted). "
            "Copy the whole link from the e-mail, or ask the workspace's admins to remove your address.",
        )
    return found, name


@router.get(UNSUBSCRIBE)
async def unsubscribe_page(request: Request, token: str, done: str = "") -> Response:
    found, name = await _subscription(request, token)
    db: Database = request.app.state.db
    async with db.reading() as session:
        out = await notification_service.is_opted_out(session, found.workspace_id, found.email_lower)
    context = {
        "email": found.email_lower,
        "workspace_name": name,
        "opted_out": out,
        "done": done if done in ("out", "in") else "",
        "action": UNSUBSCRIBE.format(token=token),
        "who": await signed_in(request),
    }
    return render(request, "unsubscribe.html", context)


@router.post(UNSUBSCRIBE)
async def unsubscribe(request: Request, token: str) -> Response:
    form = await csrf.verify(request)
    found, _ = await _subscription(request, token)
    db: Database = request.app.state.db
    resume = text(form, "resume") == "1"
    async with db.writing() as session:
        if resume:
            await notification_service.opt_in(session, found.workspace_id, found.email_lower)
        else:
            await notification_service.opt_out(session, found.workspace_id, found.email_lower)
    location = UNSUBSCRIBE.format(token=token) + ("?done=in" if resume else "?done=out")
    return RedirectResponse(location, status_code=303)
