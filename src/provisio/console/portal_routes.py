"""Opening a sign-in link (``domain.portal_links``): a new console session limited to the link's
workspace, then that workspace's SCIM settings page.

The token is a path segment, as in the set-password link: the access log records route templates only
(``/console/portal/{token}``), the console's pages and this redirect are sent with ``Referrer-Policy:
no-referrer``, and the redirect replaces the address, so the spent link is neither in the page's address
nor in its history entry. (A query string would be no safer: a proxy logs it just as it logs the path.)

One transaction spends the link, makes its person an admin if need be, starts the session and ends the
session the browser came with, if any (a new session id on every sign-in, as with a password): either
all of it happens or none, and a link refused for any reason leaves nothing written.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from provisio.config import Settings
from provisio.console import csrf
from provisio.console.scim_routes import PAGE as SCIM_PAGE
from provisio.console.security import apply_security_headers
from provisio.console.sessions import (
    add_session,
    drop_session,
    session_token,
    set_session_cookie,
    signed_in,
)
from provisio.console.templating import render
from provisio.db.engine import Database
from provisio.domain import portal_links
from provisio.domain.errors import DomainError
from provisio.domain.return_urls import display_host

router = APIRouter(include_in_schema=False)
PORTAL = portal_links.PORTAL_PATH + "{token}"

_TITLES = {
    portal_links.Refusal.UNKNOWN: "This sign-in link is not valid",
    portal_links.Refusal.USED: "This sign-in link has been used",
    portal_links.Refusal.EXPIRED: "This sign-in link has expired",
    portal_links.Refusal.REVOKED: "This sign-in link no longer works",
}
# Unknown: there is no such page; the others existed and are gone for good.
_STATUS = {portal_links.Refusal.UNKNOWN: 404}


@router.get(PORTAL)
async def open_portal_link(request: Request, token: str) -> Response:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    previous = session_token(request)
    try:
        async with db.writing() as session:
            opened = await portal_links.open_link(session, token)
            cookie = await add_session(
                session,
                settings,
                opened.admin_id,
                workspace_id=opened.workspace_id,
                return_url=opened.return_url,
            )
            if previous:
                await drop_session(session, previous)
    except portal_links.LinkRefused as refused:
        return await _refused(request, refused)
    except DomainError as exc:  # the account rules refused the person (not reached for a link made here)
        context = {"title": "This sign-in link does not work", "message": exc.detail}
        return render(request, "portal_error.html", context | {"who": await signed_in(request)}, 409)
    response = RedirectResponse(SCIM_PAGE.format(workspace_key=opened.workspace_key), status_code=303)
    set_session_cookie(response, cookie, settings)
    csrf.drop_pre_session(response, settings)
    apply_security_headers(response)  # no-store, and no Referer from the link's address
    return response


async def _refused(request: Request, refused: portal_links.LinkRefused) -> Response:
    context = {
        "title": _TITLES[refused.refusal],
        "message": refused.detail,
        "who": await signed_in(request),
        "back_url": refused.return_url,
        "back_host": display_host(refused.return_url) if refused.return_url else "",
    }
    return render(request, "portal_error.html", context, _STATUS.get(refused.refusal, 410))
