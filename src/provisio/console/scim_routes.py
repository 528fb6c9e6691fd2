"""Workspace settings > Advanced > SCIM: one GET and one small POST per form; every change redirects back
(POST-redirect-GET), so a reload or back/forward never repeats one.

*Generate Credentials* hands the new secret to the page it redirects to through ``console.reveal``
(shown by that one view, never again). Regenerating credentials and switching the method, which stop
what the identity provider uses now, first redirect to a confirmation page saying so; only a POST with
``confirm=yes`` from it changes anything."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.config import Settings
from provisio.console import csrf, reveal
from provisio.console.deps import admin_workspace, require_admin
from provisio.console.members_page import console_event_actor
from provisio.console.scim_page import confirm_context, scim_page_context
from provisio.console.sessions import SignedIn
from provisio.console.templating import render
from provisio.console.workspace_forms import save_license_form, text
from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.domain import admins as admin_service
from provisio.domain import redirect_uris as redirect_service
from provisio.domain import scim_credentials as credential_service
from provisio.domain import scim_settings as settings_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Kind
from provisio.domain.okta_callback import okta_callback_from_admin_url

router = APIRouter(include_in_schema=False)
PAGE = "/console/workspaces/{workspace_key}/settings/advanced"

CONFIRMED = "yes"

# A form handler changes the workspace and returns the notice to show, or raises DomainError (or
# ConfirmFirst, having changed nothing).
Change = Callable[[AsyncSession, Workspace, FormData, SignedIn], Awaitable[str]]


class ConfirmFirst(Exception):
    """The change stops credentials in use: show the confirmation page at ``path`` (with ``query``)."""

    def __init__(self, path: str, query: str = "") -> None:
        super().__init__(path)
        self.path = path
        self.query = query


@router.get("/console/")
async def home(request: Request, who: SignedIn = Depends(require_admin)) -> Response:
    db: Database = request.app.state.db
    async with db.reading() as session:
        workspaces = [
            w for w in await admin_service.workspaces_of(session, who.admin_id) if who.may_reach(w.id)
        ]
    if len(workspaces) == 1:
        return RedirectResponse(PAGE.format(workspace_key=workspaces[0].key), status_code=303)
    return render(request, "workspaces.html", {"who": who, "workspaces": workspaces})


@router.get(PAGE)
async def scim_page(
    request: Request, workspace_key: str, notice: str | None = None, who: SignedIn = Depends(require_admin)
) -> Response:
    workspace = await admin_workspace(request, workspace_key, who)
    settings: Settings = request.app.state.settings
    cookie = reveal.read_cookie(request, settings)
    issued = None
    if cookie:
        db: Database = request.app.state.db
        async with db.writing() as session:
            issued = await reveal.take(session, cookie, who.session_hash, workspace.id)
    response = await _render_page(request, workspace_key, who, notice=notice, issued=issued)
    if cookie:
        reveal.clear_cookie(response, settings)
    return response


async def _render_page(
    request: Request, workspace_key: str, who: SignedIn, status: int = 200, **extra: Any
) -> Response:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    async with db.reading() as session:
        workspace = await workspace_service.require_workspace(session, workspace_key)
        context = await scim_page_context(session, settings, workspace, **extra)
    context["who"] = who
    return render(request, "scim_settings.html", context, status)


async def _apply(request: Request, workspace_key: str, who: SignedIn, change: Change, field: str) -> Response:
    form = await csrf.verify(request)
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    try:
        async with db.writing() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            notice = await change(session, workspace, form, who)
    except ConfirmFirst as confirm:
        location = PAGE.format(workspace_key=workspace_key) + confirm.path + confirm.query
        return RedirectResponse(location, status_code=303)
    except DomainError as exc:
        status = 409 if exc.kind is Kind.CONFLICT else 400
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != csrf.FIELD}
        return await _render_page(
            request, workspace_key, who, status, error=exc.detail, error_field=field, values=values
        )
    location = PAGE.format(workspace_key=workspace_key) + f"?notice={notice}#{field}"
    return RedirectResponse(location, status_code=303)


async def _set_enabled(session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn) -> str:
    enabled = text(form, "enabled") == "on"
    await settings_service.set_enabled(session, workspace, enabled, by=console_event_actor(who))
    return "enabled" if enabled else "disabled"


async def _set_method(session: AsyncSession, workspace: Workspace, form: FormData, _: SignedIn) -> str:
    method = settings_service.parse_method(text(form, "method"))
    if (
        method.value != workspace.scim_auth_method
        and text(form, "confirm") != CONFIRMED
        and await credential_service.has_live_credentials(session, workspace)
    ):
        raise ConfirmFirst("/scim/method/confirm", f"?method={method.value}")
    changed = await settings_service.set_method(session, workspace, method)
    return "method" if changed else "method-unchanged"


async def _add_uri(session: AsyncSession, workspace: Workspace, form: FormData, _: SignedIn) -> str:
    await redirect_service.add_redirect_uri(session, workspace, text(form, "uri"))
    return "uri-added"


async def _remove_uri(session: AsyncSession, workspace: Workspace, form: FormData, _: SignedIn) -> str:
    await redirect_service.remove_redirect_uri(session, workspace, text(form, "uri"))
    return "uri-removed"


async def _add_okta_callback(session: AsyncSession, workspace: Workspace, form: FormData, _: SignedIn) -> str:
    callback = okta_callback_from_admin_url(text(form, "okta_admin_url"))
    await redirect_service.add_redirect_uri(session, workspace, callback)
    return "uri-added"


async def _set_license(session: AsyncSession, workspace: Workspace, form: FormData, _: SignedIn) -> str:
    await save_license_form(session, workspace, form)
    return "license"


FORMS: dict[str, tuple[Change, str]] = {
    "enabled": (_set_enabled, "scim-enabled"),
    "method": (_set_method, "scim-method"),
    "redirect-uris": (_add_uri, "redirect-uris"),
    "redirect-uris/remove": (_remove_uri, "redirect-uris"),
    "okta-callback": (_add_okta_callback, "okta-helper"),
    "license": (_set_license, "license"),
}


def _form_route(action: str, change: Change, field: str) -> None:
    async def handler(
        request: Request, workspace_key: str, who: SignedIn = Depends(require_admin)
    ) -> Response:
        return await _apply(request, workspace_key, who, change, field)

    handler.__name__ = "scim_" + action.replace("/", "_").replace("-", "_")
    router.add_api_route(f"{PAGE}/scim/{action}", handler, methods=["POST"])


for _action, (_change, _field) in FORMS.items():
    _form_route(_action, _change, _field)


@router.get(PAGE + "/scim/method/confirm")
async def confirm_method(
    request: Request, workspace_key: str, method: str = "", who: SignedIn = Depends(require_admin)
) -> Response:
    await admin_workspace(request, workspace_key, who)
    try:
        chosen = settings_service.parse_method(method)
    except DomainError as exc:
        return await _render_page(
            request, workspace_key, who, 400, error=exc.detail, error_field="scim-method"
        )
    return await _render_confirm(request, workspace_key, who, new_method=chosen)


@router.get(PAGE + "/scim/credentials/confirm")
async def confirm_credentials(
    request: Request, workspace_key: str, who: SignedIn = Depends(require_admin)
) -> Response:
    await admin_workspace(request, workspace_key, who)
    return await _render_confirm(request, workspace_key, who)


async def _render_confirm(request: Request, workspace_key: str, who: SignedIn, **extra: Any) -> Response:
    db: Database = request.app.state.db
    async with db.reading() as session:
        workspace = await workspace_service.require_workspace(session, workspace_key)
        context = await confirm_context(session, workspace, **extra)
    context["who"] = who
    return render(request, "scim_confirm.html", context)


@router.post(PAGE + "/scim/credentials")
async def generate_credentials(
    request: Request, workspace_key: str, who: SignedIn = Depends(require_admin)
) -> Response:
    """Issue credentials, then redirect to the page that shows them once. When credentials exist, only
    a confirmed POST (from the confirmation page) replaces them."""
    form = await csrf.verify(request)
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    page = PAGE.format(workspace_key=workspace_key)
    try:
        async with db.writing() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            existing = await credential_service.has_live_credentials(session, workspace)
            if existing and text(form, "confirm") != CONFIRMED:
                return RedirectResponse(page + "/scim/credentials/confirm", status_code=303)
            window = credential_service.parse_rotation_window(text(form, "window"))
            issued = await credential_service.generate_credentials(session, workspace, window)
            cookie = await reveal.stash(session, who.session_hash, workspace.id, issued)
    except DomainError as exc:
        return await _render_page(
            request, workspace_key, who, 400, error=exc.detail, error_field="credentials"
        )
    response = RedirectResponse(
        page + f"?notice={'regenerated' if existing else 'generated'}", status_code=303
    )
    reveal.set_cookie(response, settings, cookie)
    return response
