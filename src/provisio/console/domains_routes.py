"""Workspace settings > Domains: add an e-mail domain, show the TXT record that proves it, verify it
(a DNS lookup outside any transaction, then ``domains.record_check``), remove it, and the workspace's
"allow other domains" setting. Removing a domain takes a confirmation step. Every rule lives in
``domain.domains``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.config import Settings
from provisio.console import csrf
from provisio.console.confirm import Confirmation, render_confirmation
from provisio.console.deps import admin_workspace, require_admin
from provisio.console.domains_page import PAGE, domains_page_context, verification_outcome
from provisio.console.sessions import SignedIn
from provisio.console.templating import render
from provisio.console.workspace_forms import STATUS, Change, add_form_routes, text
from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.domain import domains as domain_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError

router = APIRouter(include_in_schema=False)


@router.get(PAGE)
async def domains_page(
    request: Request,
    workspace_key: str,
    notice: str | None = None,
    domain: str | None = None,
    who: SignedIn = Depends(require_admin),
) -> Response:
    await admin_workspace(request, workspace_key, who)
    return await _render(request, workspace_key, who, 200, notice=notice, domain=domain)


async def _render(request: Request, workspace_key: str, who: SignedIn, code: int, **extra: Any) -> Response:
    db: Database = request.app.state.db
    async with db.reading() as session:
        workspace = await workspace_service.require_workspace(session, workspace_key)
        context = await domains_page_context(session, workspace, **extra)
    context["who"] = who
    return render(request, "domains.html", context, code)


async def _error_page(
    request: Request, workspace_key: str, who: SignedIn, status: int, extra: dict[str, Any]
) -> Response:
    return await _render(request, workspace_key, who, status, **extra)


async def _add(session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn) -> dict[str, str]:
    entry = await domain_service.add_domain(session, workspace, text(form, "domain"))
    return {"notice": "added", "domain": entry.domain}


async def _remove(
    session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn
) -> dict[str, str]:
    name = domain_service.normalise_domain(text(form, "domain"))
    await domain_service.remove_domain(session, workspace, name)
    return {"notice": "removed", "domain": name}


@router.get(PAGE + "/remove")
async def confirm_remove_domain(
    request: Request, workspace_key: str, domain: str = "", who: SignedIn = Depends(require_admin)
) -> Response:
    """The confirmation step of Remove: what stops working, and the form that removes the domain."""
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    try:
        async with db.reading() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            entry = await domain_service.get_domain(session, workspace, domain)
    except DomainError as exc:
        extra = {"error": exc.detail, "error_field": "domain-list", "values": {"domain": domain}}
        return await _error_page(request, workspace_key, who, STATUS.get(exc.kind, 400), extra)
    path = PAGE.format(workspace_key=workspace_key)
    consequence = (
        "Your identity provider can no longer provision members with an e-mail address at "
        f"{entry.domain}, unless other domains are allowed."
        if entry.verified_at is not None
        else "Its verification record is forgotten: adding it again gives it a new one."
    )
    confirm = Confirmation(
        title=f"Remove {entry.domain}?",
        message=f"{entry.domain} will no longer belong to {workspace.name}. {consequence} Members already "
        "provisioned are kept.",
        button=f"Remove {entry.domain}",
        action=f"{path}/remove",
        fields=[("domain", entry.domain)],
        page_name="Domains",
        page_path=path,
    )
    return render_confirmation(request, workspace, who, confirm, nav="domains")


async def _allow_other_domains(
    session: AsyncSession, workspace: Workspace, form: FormData, who: SignedIn
) -> dict[str, str]:
    allow = text(form, "allow_other_domains") == "on"
    await domain_service.set_allow_other_domains(session, workspace, allow)
    return {"notice": "allow-on" if allow else "allow-off"}


FORMS: dict[str, tuple[Change, str]] = {
    "add": (_add, "add-domain"),
    "remove": (_remove, "domain-list"),
    "allow-other-domains": (_allow_other_domains, "other-domains"),
}
add_form_routes(router, PAGE, FORMS, _error_page, "domains")


@router.post(PAGE + "/verify")
async def verify_domain(
    request: Request, workspace_key: str, who: SignedIn = Depends(require_admin)
) -> Response:
    """Look the TXT record up (no transaction open while DNS answers), then record the outcome."""
    form = await csrf.verify(request)
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    raw = text(form, "domain")
    try:
        async with db.reading() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            name = (await domain_service.domain_to_verify(session, workspace, raw)).domain
        check = await domain_service.check_txt(settings, name)
        async with db.writing() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            entry = await domain_service.record_check(session, workspace, name, check)
            outcome = verification_outcome(entry, check)
    except DomainError as exc:
        extra = {"error": exc.detail, "error_field": "domain-list", "values": {"domain": raw}}
        return await _error_page(request, workspace_key, who, STATUS.get(exc.kind, 400), extra)
    query = urlencode({"notice": f"verify-{outcome}", "domain": name})
    return RedirectResponse(
        f"{PAGE.format(workspace_key=workspace_key)}?{query}#domain-list", status_code=303
    )
