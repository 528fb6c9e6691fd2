"""Workspace settings > Advanced > SCIM: one GET and one small POST per form; changes redirect back
(POST-redirect-GET) except *Generate Credentials*, whose secret is rendered once and never stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.config import Settings
from provisio.console import csrf
from provisio.console.deps import admin_workspace, require_admin
from provisio.console.scim_page import scim_page_context
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

# A form handler changes the workspace and returns the notice to show, or raises DomainError.
Change = Callable[[AsyncSession, Workspace, FormData], Awaitable[str]]


@router.get("/console/")
async def home(request: Request, who: SignedIn = Depends(require_admin)) -> Response:
    db: Database = request.app.state.db
    async with db.reading() as session:
        workspaces = await admin_service.workspaces_of(session, who.admin_id)
    if len(workspaces) == 1:
        return RedirectResponse(PAGE.format(workspace_key=workspaces[0].key), status_code=303)
    return render(request, "workspaces.html", {"who": who, "workspaces": workspaces})


@router.get(PAGE)
async def scim_page(
    request: Request, workspace_key: str, notice: str | None = None, who: SignedIn = Depends(require_admin)
) -> Response:
    await admin_workspace(request, workspace_key, who)
    return await _render_page(request, workspace_key, who, notice=notice)


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
            notice = await change(session, workspace, form)
    except DomainError as exc:
        status = 409 if exc.kind is Kind.CONFLICT else 400
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != csrf.FIELD}
        return await _render_page(
            request, workspace_key, who, status, error=exc.detail, error_field=field, values=values
        )
    location = PAGE.format(workspace_key=workspace_key) + f"?notice={notice}#{field}"
    return RedirectResponse(location, status_code=303)


async def _set_enabled(session: AsyncSession, workspace: Workspace, form: FormData) -> str:
    enabled = text(form, "enabled") == "on"
    await settings_service.set_enabled(session, workspace, enabled)
    return "enabled" if enabled else "disabled"


async def _set_method(session: AsyncSession, workspace: Workspace, form: FormData) -> str:
    method = settings_service.parse_method(text(form, "method"))
    changed = await settings_service.set_method(session, workspace, method)
    return "method" if changed else "method-unchanged"


async def _add_uri(session: AsyncSession, workspace: Workspace, form: FormData) -> str:
    await redirect_service.add_redirect_uri(session, workspace, text(form, "uri"))
    return "uri-added"


async def _remove_uri(session: AsyncSession, workspace: Workspace, form: FormData) -> str:
    await redirect_service.remove_redirect_uri(session, workspace, text(form, "uri"))
    return "uri-removed"


async def _add_okta_callback(session: AsyncSession, workspace: Workspace, form: FormData) -> str:
    callback = okta_callback_from_admin_url(text(form, "okta_admin_url"))
    await redirect_service.add_redirect_uri(session, workspace, callback)
    return "uri-added"


async def _set_license(session: AsyncSession, workspace: Workspace, form: FormData) -> str:
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


@router.post(PAGE + "/scim/credentials")
async def generate_credentials(
    request: Request, workspace_key: str, who: SignedIn = Depends(require_admin)
) -> Response:
    await csrf.verify(request)
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    try:
        async with db.writing() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            issued = await credential_service.generate_credentials(session, workspace)
    except DomainError as exc:
        return await _render_page(
            request, workspace_key, who, 400, error=exc.detail, error_field="credentials"
        )
    return await _render_page(request, workspace_key, who, issued=issued)
