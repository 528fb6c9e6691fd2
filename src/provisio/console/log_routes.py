"""Workspace > Provisioning log: what the IdP did and what failed, newest first, filtered, in pages of
ids; one event in full; the same as CSV. Reading only; the rules live in
``provisio.domain.provisioning_log``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from provisio.console.deps import admin_workspace, require_admin
from provisio.console.log_page import CSV, EVENT, PAGE, csv_lines, event_context, log_page_context
from provisio.console.security import apply_security_headers
from provisio.console.sessions import SignedIn
from provisio.console.templating import render
from provisio.db.engine import Database
from provisio.domain import provisioning_log
from provisio.domain.errors import DomainError
from provisio.domain.provisioning_log import LogFilter

router = APIRouter(include_in_schema=False)


def _filters(
    outcome: str, operation: str, member: str, credential: str, since: str, until: str
) -> tuple[LogFilter, str | None]:
    try:
        parsed = LogFilter.parse(
            outcome=outcome,
            operation=operation,
            member=member,
            credential=credential,
            since=since,
            until=until,
        )
    except DomainError as exc:
        return LogFilter(), exc.detail
    return parsed, None


def _before(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


@router.get(PAGE)
async def log_page(
    request: Request,
    workspace_key: str,
    outcome: str = "",
    operation: str = "",
    member: str = "",
    credential: str = "",
    since: str = Query("", alias="from"),
    until: str = Query("", alias="to"),
    before: str = "",
    who: SignedIn = Depends(require_admin),
) -> Response:
    workspace = await admin_workspace(request, workspace_key, who)
    filters, error = _filters(outcome, operation, member, credential, since, until)
    db: Database = request.app.state.db
    async with db.reading() as session:
        context = await log_page_context(session, workspace, filters, before=_before(before), error=error)
    context["who"] = who
    return render(request, "log.html", context, 400 if error else 200)


@router.get(CSV)
async def log_csv(
    request: Request,
    workspace_key: str,
    outcome: str = "",
    operation: str = "",
    member: str = "",
    credential: str = "",
    since: str = Query("", alias="from"),
    until: str = Query("", alias="to"),
    who: SignedIn = Depends(require_admin),
) -> Response:
    workspace = await admin_workspace(request, workspace_key, who)
    filters, error = _filters(outcome, operation, member, credential, since, until)
    if error:
        db: Database = request.app.state.db
        async with db.reading() as session:
            context = await log_page_context(session, workspace, filters, error=error)
        context["who"] = who
        return render(request, "log.html", context, 400)
    response = StreamingResponse(
        csv_lines(request.app.state.db, workspace.id, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="provisioning-log-{workspace.key}.csv"'},
    )
    apply_security_headers(response)
    return response


@router.get(EVENT)
async def log_event(
    request: Request, workspace_key: str, event_id: str, who: SignedIn = Depends(require_admin)
) -> Response:
    workspace = await admin_workspace(request, workspace_key, who)
    db: Database = request.app.state.db
    number = _before(event_id)
    try:
        async with db.reading() as session:
            if number is None:
                raise provisioning_log.not_found()
            event = await provisioning_log.event(session, workspace.id, number)
            context = event_context(workspace, event)
    except DomainError as exc:
        async with db.reading() as session:
            context = await log_page_context(session, workspace, LogFilter(), error=exc.detail)
        context["who"] = who
        return render(request, "log.html", context, 404)
    context["who"] = who
    return render(request, "log_event.html", context)
