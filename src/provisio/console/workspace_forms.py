"""What the workspace pages (Members, Billing & seats, Domains) share: one small POST per form that
checks CSRF and that the admin administers the workspace, changes it through a domain service, then
redirects back with a notice (POST-redirect-GET) or re-renders the page with the error next to the form;
and the pager of their lists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.console import csrf
from provisio.console.deps import admin_workspace, require_admin
from provisio.console.sessions import SignedIn
from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.domain import scim_settings as settings_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Kind

WORKSPACE = "/console/workspaces/{workspace_key}"

# A form handler changes the workspace and returns the query of the page to go back to (at least
# ``notice``), or raises DomainError.
Change = Callable[[AsyncSession, Workspace, FormData, SignedIn], Awaitable[dict[str, str]]]
# Renders the page with an error: (request, workspace_key, who, status, extra context).
ErrorPage = Callable[[Request, str, SignedIn, int, dict[str, Any]], Awaitable[Response]]

STATUS = {Kind.CONFLICT: 409, Kind.FORBIDDEN: 403, Kind.NOT_FOUND: 404}


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def whole_number(raw: str, what: str, *, minimum: int) -> int:
    value = raw.strip()
    if not value.isdigit() or int(value) < minimum:
        raise DomainError(Kind.INVALID, f"{what} must be a whole number of at least {minimum}.")
    return int(value)


async def save_license_form(session: AsyncSession, workspace: Workspace, form: FormData) -> None:
    """The licence auto-charge form, shared by the SCIM settings and the Billing & seats pages."""
    raw = text(form, "max_seats").strip()
    if raw and not raw.isdigit():
        raise DomainError(Kind.INVALID, "The maximum seat count must be a whole number (or empty: no limit).")
    await settings_service.set_license(
        session, workspace, auto_charge=text(form, "auto_charge") == "on", max_seats=int(raw) if raw else None
    )


def page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


async def apply(
    request: Request,
    workspace_key: str,
    who: SignedIn,
    change: Change,
    *,
    page: str,
    anchor: str,
    error_page: ErrorPage,
) -> Response:
    form = await csrf.verify(request)
    await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    try:
        async with db.writing() as session:
            workspace = await workspace_service.require_workspace(session, workspace_key)
            query = await change(session, workspace, form, who)
    except DomainError as exc:
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != csrf.FIELD}
        extra = {"error": exc.detail, "error_field": anchor, "values": values}
        return await error_page(request, workspace_key, who, STATUS.get(exc.kind, 400), extra)
    location = page.format(workspace_key=workspace_key) + "?" + urlencode(query) + f"#{anchor}"
    return RedirectResponse(location, status_code=303)


def add_form_routes(
    router: APIRouter,
    page: str,
    forms: dict[str, tuple[Change, str]],
    error_page: ErrorPage,
    prefix: str,
) -> None:
    """``POST {page}/{action}`` for each form."""
    for action, (change, anchor) in forms.items():
        _form_route(router, page, action, change, anchor, error_page, prefix)


def _form_route(
    router: APIRouter,
    page: str,
    action: str,
    change: Change,
    anchor: str,
    error_page: ErrorPage,
    prefix: str,
) -> None:
    async def handler(
        request: Request, workspace_key: str, who: SignedIn = Depends(require_admin)
    ) -> Response:
        return await apply(
            request, workspace_key, who, change, page=page, anchor=anchor, error_page=error_page
        )

    handler.__name__ = prefix + "_" + action.replace("/", "_").replace("-", "_")
    router.add_api_route(f"{page}/{action}", handler, methods=["POST"])


@dataclass(frozen=True)
class Pager:
    """Page ``number`` of ``total`` rows, ``size`` a page; links keep the list's other query values."""

    number: int
    size: int
    total: int
    path: str
    query: Sequence[tuple[str, str]] = ()

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max((self.total + self.size - 1) // self.size, 1)

    @property
    def first_row(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_row(self) -> int:
        return min(self.offset + self.size, self.total)

    def url(self, number: int) -> str:
        query = [(k, v) for k, v in self.query if v] + ([("page", str(number))] if number > 1 else [])
        return self.path + ("?" + urlencode(query) if query else "")

    @property
    def previous_url(self) -> str | None:
        return self.url(self.number - 1) if self.number > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.number + 1) if self.number < self.pages else None
