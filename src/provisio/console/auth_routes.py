"""Sign-in and sign-out."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.config import Settings
from provisio.console import csrf, throttle
from provisio.console.deps import safe_next
from provisio.console.sessions import (
    COOKIE,
    clear_session_cookie,
    end_session,
    set_session_cookie,
    signed_in,
    start_session,
)
from provisio.console.templating import render
from provisio.db.engine import Database
from provisio.domain import admins as admin_service

router = APIRouter(include_in_schema=False)

BAD_CREDENTIALS = "The e-mail address or password is incorrect."
THROTTLED = "Too many failed sign-in attempts. Wait 15 minutes, then try again."


@router.get("/console")
async def console_root_redirect() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    if await signed_in(request):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "email": ""})


@router.post("/console/login")
async def login(request: Request) -> Response:
    form = await csrf.verify(request)
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or ""))
    email_lower = admin_service.normalise_email(email)
    client_ip = request.client.host if request.client else "unknown"
    async with db.writing() as session:
        if await throttle.is_throttled(session, settings, email_lower, client_ip):
            error, status, admin_id = THROTTLED, 429, None
        else:
            admin = await admin_service.verify_credentials(session, email, password)
            if admin is None:
                await throttle.record_failure(session, settings, email_lower, client_ip)
                error, status, admin_id = BAD_CREDENTIALS, 401, None
            else:
                await throttle.clear_failures(session, email_lower)
                error, status, admin_id = "", 303, admin.id
    if admin_id is None:
        return render(request, "login.html", {"next": target, "email": email, "error": error}, status)
    old = request.cookies.get(COOKIE)
    if old:
        await end_session(db, old)  # a new session id on every sign-in (no fixation)
    token = await start_session(db, settings, admin_id)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, token, settings)
    return response


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    form = await csrf.verify(request)
    settings: Settings = request.app.state.settings
    token = request.cookies.get(COOKIE)
    if token:
        await end_session(request.app.state.db, token)
    target = "/console/login"
    then = form.get("next")
    if isinstance(then, str) and safe_next(then) == then:
        target += "?next=" + quote(then, safe="")
    response = RedirectResponse(target, status_code=303)
    clear_session_cookie(response, settings)
    return response
