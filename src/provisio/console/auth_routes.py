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
    clear_session_cookie,
    end_session,
    session_token,
    set_session_cookie,
    signed_in,
    start_session,
)
from provisio.console.templating import render
from provisio.db.engine import Database
from provisio.domain import admins as admin_service
from provisio.oauth import consent

router = APIRouter(include_in_schema=False)

BAD_CREDENTIALS = "The e-mail address or password is incorrect."
THROTTLED = "Too many failed sign-in attempts. Wait 15 minutes, then try again."
NOTICES = {"password-set": "Your password is set. Sign in with your e-mail address and the new password."}


@router.get("/console")
async def console_root_redirect() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/login")
async def login_form(request: Request, next: str | None = None, notice: str | None = None) -> Response:
    if await signed_in(request):
        return RedirectResponse(safe_next(next), status_code=303)
    target = safe_next(next)
    context = {
        "next": target,
        "email": "",
        "asking": await _asking(request, target),
        "notice": NOTICES.get(notice or ""),
    }
    return render(request, "login.html", context)


async def _asking(request: Request, target: str) -> consent.AskingClient | None:
    """Who asks for access, when the sign-in stands in front of a consent page."""
    if not target.startswith("/oauth/"):
        return None
    db: Database = request.app.state.db
    async with db.reading() as session:
        return await consent.asking_client(session, target)


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
    # The attempt is recorded as a failure before the password is checked (see ``throttle``); the
    # password is checked in a worker thread and outside any transaction (see ``admins.check_password``).
    if not await throttle.begin_attempt(db, settings, email_lower, client_ip):
        return render(request, "login.html", {"next": target, "email": email, "error": THROTTLED}, 429)
    async with db.reading() as session:
        stored = await admin_service.stored_credentials(session, email)
    valid, new_hash = await admin_service.check_password(stored, password)
    if stored is None or not valid:  # the attempt's record stays, as a failure
        context = {
            "next": target,
            "email": email,
            "error": BAD_CREDENTIALS,
            "asking": await _asking(request, target),
        }
        return render(request, "login.html", context, 401)
    async with db.writing() as session:
        await throttle.clear_failures(session, email_lower)
        if new_hash:
            await admin_service.replace_password_hash(session, stored, new_hash)
    admin_id = stored.admin_id
    old = session_token(request)
    if old:
        await end_session(db, old)  # a new session id on every sign-in (no fixation)
    token = await start_session(db, settings, admin_id)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, token, settings)
    csrf.drop_pre_session(response, settings)  # its token is void from now on: forms use the session's
    return response


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    who = await signed_in(request)
    # Without a live session (it expired, or was ended in another tab) there is nothing to end or to
    # protect, and the form's token, bound to that session, cannot verify: go straight to sign-in.
    form = await csrf.verify(request) if who is not None else await request.form()
    token = session_token(request)
    if who is not None and token:
        await end_session(request.app.state.db, token)
    target = "/console/login"
    then = form.get("next")
    if isinstance(then, str) and safe_next(then) == then:
        target += "?next=" + quote(then, safe="")
    response = RedirectResponse(target, status_code=303)
    clear_session_cookie(response, settings)
    return response
