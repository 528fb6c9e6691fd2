"""Workspace > Admins: the workspace's console admins, *Add admin* by e-mail and *Remove* (after a
confirmation page), each a POST with CSRF that redirects back (POST-redirect-GET); and the public
set-password page of the one-time link a new admin gets.

The link of a new account is e-mailed to it, and shown once at the top of the page the inviter lands on:
the POST hands it to that one view through ``console.reveal``, so a reload does not show it again."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.config import Settings
from provisio.console import csrf, reveal
from provisio.console.admins_page import (
    CONFIRM_MESSAGE,
    CONFIRM_SELF,
    CONFIRM_TITLE,
    INVITE,
    INVITE_COOKIE,
    PAGE,
    admins_page_context,
    removal_tag,
)
from provisio.console.confirm import Confirmation, render_confirmation
from provisio.console.deps import admin_workspace, require_admin
from provisio.console.members_page import console_actor
from provisio.console.sessions import SignedIn, signed_in
from provisio.console.templating import render
from provisio.console.workspace_forms import STATUS, text
from provisio.db.engine import Database
from provisio.domain import admins as account_service
from provisio.domain import workspace_admins as admin_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError
from provisio.notify import invites

router = APIRouter(include_in_schema=False)
SET_PASSWORD = "/console/set-password/{token}"


@router.get(PAGE)
async def admins_page(
    request: Request,
    workspace_key: str,
    notice: str | None = None,
    admin: str | None = None,
    tag: str | None = None,
    who: SignedIn = Depends(require_admin),
) -> Response:
    workspace = await admin_workspace(request, workspace_key, who)
    settings: Settings = request.app.state.settings
    cookie = reveal.read_cookie(request, settings, INVITE_COOKIE)
    invite: dict[str, Any] | None = None
    if cookie:
        db: Database = request.app.state.db
        async with db.writing() as session:
            invite = await reveal.take_payload(session, cookie, who.session_hash, workspace.id, INVITE)
    extra: dict[str, Any] = {"notice": notice, "admin": admin, "tag": tag}
    if invite:
        extra.update(invite_url=invite["url"], invite_email=invite["email"])
    response = await _render(request, workspace_key, who, 200, extra)
    if cookie:
        reveal.clear_cookie(response, settings, INVITE_COOKIE)
    return response


async def _render(
    request: Request, workspace_key: str, who: SignedIn, status: int, extra: dict[str, Any]
) -> Response:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    async with db.reading() as session:
        workspace = await workspace_service.require_workspace(session, workspace_key)
        context = await admins_page_context(
            session, workspace, settings.secret_key, who_id=who.admin_id, **extra
        )
    context["who"] = who
    return render(request, "admins.html", context, status)


async def _error(
    request: Request, workspace_key: str, who: SignedIn, exc: DomainError, field: str, values: dict[str, str]
) -> Response:
    extra = {"error": exc.detail, "error_field": field, "values": values}
    return await _render(request, workspace_key, who, STATUS.get(exc.kind, 400), extra)


@router.post(PAGE + "/add")
async def add_admin(request: Request, workspace_key: str, who: SignedIn = Depends(require_admin)) -> Response:
    form = await csrf.verify(request)
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    email = text(form, "email")
    cookie = None
    try:
        async with db.writing() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            invited = await invites.add_admin(session, settings, workspace, email, actor=console_actor(who))
            if invited.shown_url is not None:
                payload = {"url": invited.shown_url, "email": invited.added.email}
                cookie = await reveal.stash_payload(session, who.session_hash, workspace.id, INVITE, payload)
    except DomainError as exc:
        return await _error(request, workspace_key, who, exc, "add-admin", {"email": email})
    added = invited.added
    if invited.shown_url is not None:
        notice = "invited"
    else:
        notice = "granted" if added.has_password else "granted-mailed"
    query = {"notice": notice, "admin": added.admin_id}
    location = PAGE.format(workspace_key=workspace_key) + "?" + urlencode(query) + "#admin-list"
    response = RedirectResponse(location, status_code=303)
    if cookie:
        reveal.set_cookie(response, settings, cookie, INVITE_COOKIE)
    return response


@router.get(PAGE + "/remove")
async def confirm_remove(
    request: Request, workspace_key: str, admin_id: str = "", who: SignedIn = Depends(require_admin)
) -> Response:
    """The confirmation step of *Remove*: what will happen, and the form that does it."""
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    try:
        async with db.reading() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            admin = await admin_service.workspace_admin(session, workspace.id, admin_id=admin_id)
    except DomainError as exc:
        return await _error(request, workspace_key, who, exc, "admin-list", {})
    path = PAGE.format(workspace_key=workspace_key)
    message = CONFIRM_SELF if admin.id == who.admin_id else CONFIRM_MESSAGE
    confirm = Confirmation(
        title=CONFIRM_TITLE.format(admin=admin.email, workspace=workspace.name),
        message=message.format(admin=admin.email, workspace=workspace.name),
        button="Remove admin",
        action=f"{path}/remove",
        fields=[("admin_id", admin.id)],
        page_name="Admins",
        page_path=path,
    )
    return render_confirmation(request, workspace, who, confirm, nav="admins")


@router.post(PAGE + "/remove")
async def remove_admin(
    request: Request, workspace_key: str, who: SignedIn = Depends(require_admin)
) -> Response:
    form = await csrf.verify(request)
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    admin_id = text(form, "admin_id")
    try:
        async with db.writing() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            email = await admin_service.remove_admin(session, workspace, admin_id)
    except DomainError as exc:
        return await _error(request, workspace_key, who, exc, "admin-list", {})
    if admin_id == who.admin_id:  # they no longer see this workspace
        return RedirectResponse("/console/", status_code=303)
    query = {
        "notice": "removed",
        "admin": email,
        "tag": removal_tag(settings.secret_key, workspace.id, email),
    }
    location = PAGE.format(workspace_key=workspace_key) + "?" + urlencode(query) + "#admin-list"
    return RedirectResponse(location, status_code=303)


# --- the public set-password page ---------------------------------------------------------------------


def _invalid_link(request: Request, who: SignedIn | None, message: str) -> Response:
    context = {"title": "This link does not work", "message": message, "who": who}
    return render(request, "error.html", context, 404)


@router.get(SET_PASSWORD)
async def set_password_form(request: Request, token: str) -> Response:
    who = await signed_in(request)
    db: Database = request.app.state.db
    try:
        async with db.reading() as session:
            admin = await admin_service.admin_for_token(session, token)
    except DomainError as exc:
        return _invalid_link(request, who, exc.detail)
    return _password_page(request, who, token, admin.email)


def _password_page(
    request: Request, who: SignedIn | None, token: str, email: str, error: str | None = None
) -> Response:
    context = {
        "who": who,
        "email": email,
        "action": SET_PASSWORD.format(token=token),
        "min_length": account_service.MIN_PASSWORD_LENGTH,
        "error": error,
    }
    return render(request, "set_password.html", context, 400 if error else 200)


@router.post(SET_PASSWORD)
async def set_password(request: Request, token: str) -> Response:
    form = await csrf.verify(request)
    who = await signed_in(request)
    db: Database = request.app.state.db
    try:
        async with db.reading() as session:
            admin = await admin_service.admin_for_token(session, token)
    except DomainError as exc:
        return _invalid_link(request, who, exc.detail)
    password, confirmation = text(form, "password"), text(form, "confirmation")
    if password != confirmation:
        return _password_page(request, who, token, admin.email, "The two passwords are not the same.")
    try:
        password_hash = await admin_service.prepare_password(password)
    except DomainError as exc:
        return _password_page(request, who, token, admin.email, exc.detail)
    try:
        async with db.writing() as session:
            await admin_service.set_password_with_token(session, token, password_hash)
    except DomainError as exc:  # used or replaced meanwhile
        return _invalid_link(request, who, exc.detail)
    return RedirectResponse("/console/login?notice=password-set", status_code=303)
