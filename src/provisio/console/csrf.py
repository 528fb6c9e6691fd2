"""CSRF protection for every console and consent form.

Signed in, a form's token is the HMAC, under the secret key, of the session's token hash, which only the
server knows: no cookie an attacker can plant yields a valid token, a token from one session is refused
in any other, and signing out or in again voids it. Before sign-in (the sign-in form) the token is the
HMAC of a random pre-session cookie (``__Host-`` prefixed over https, see ``cookies``); it is never
accepted once signed in, and a sign-in drops the cookie.

As defence in depth, a form whose browser reports a cross-origin request is refused whatever its token:
``Sec-Fetch-Site`` when sent (a page cannot forge it, and a sibling subdomain is ``same-site``, not
``same-origin``), otherwise ``Origin`` unless it is ``null`` (which the console's own pages send, being
served with ``Referrer-Policy: no-referrer``). A sandboxed cross-site frame sends ``null`` too, so for a
browser without ``Sec-Fetch-Site`` the token is the whole defence.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings
from provisio.console import cookies, sessions

FIELD = "csrf_token"
# Distinct HMAC inputs, so a token of one kind can never pass as the other.
_SESSION, _PRE_SESSION = "csrf:session:", "csrf:pre-session:"
_MIN_COOKIE_LENGTH = 32
_ALLOWED_FETCH_SITES = ("same-origin", "none")  # "none": the person's own action (typed, bookmarked)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class CsrfFailed(Exception):
    pass


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _sign(secret: str, purpose: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}{value}".encode(), hashlib.sha256).hexdigest()


def _pre_session_cookie(request: Request) -> str | None:
    value = cookies.read(request, _settings(request), cookies.CSRF)
    return value if value and len(value) >= _MIN_COOKIE_LENGTH else None


def _expected(request: Request, who: sessions.SignedIn | None, pre_session: str) -> str:
    secret = _settings(request).secret_key
    if who is not None:
        return _sign(secret, _SESSION, who.session_hash)
    return _sign(secret, _PRE_SESSION, pre_session)


def form_token(request: Request) -> str:
    """The token to put in this page's forms: bound to the session when signed in, otherwise to the
    pre-session cookie, created (and sent by ``attach_cookie``) when there is none."""
    who = sessions.resolved(request)
    value = ""
    if who is None:
        value = _pre_session_cookie(request) or str(getattr(request.state, "new_csrf_cookie", ""))
        if not value:
            value = secrets.token_urlsafe(32)
            request.state.new_csrf_cookie = value
    return _expected(request, who, value)


def attach_cookie(request: Request, response: Response) -> None:
    value = getattr(request.state, "new_csrf_cookie", None)
    if value:
        cookies.store(response, _settings(request), cookies.CSRF, value)


def drop_pre_session(response: Response, settings: Settings) -> None:
    """On sign-in: the pre-session token stops working (the next sign-in form gets a new cookie)."""
    cookies.remove(response, settings, cookies.CSRF)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    suffix = f":{port}" if port is not None and port != _DEFAULT_PORTS.get(parts.scheme) else ""
    return f"{parts.scheme}://{host}{suffix}"


def _from_this_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.lower() in _ALLOWED_FETCH_SITES
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin.lower() == _origin(_settings(request).public_base)


async def verify(request: Request) -> FormData:
    """The submitted form, if it carries the token of the session it is authenticated with (or, with no
    session, of its pre-session cookie) and no browser header says it came from elsewhere; otherwise
    ``CsrfFailed``."""
    form = await request.form()
    sent = form.get(FIELD)
    if not isinstance(sent, str) or not _from_this_origin(request):
        raise CsrfFailed
    who = await sessions.signed_in(request)
    pre_session = ""
    if who is None:
        pre_session = _pre_session_cookie(request) or ""
        if not pre_session:
            raise CsrfFailed
    if not hmac.compare_digest(sent.encode(), _expected(request, who, pre_session).encode()):
        raise CsrfFailed
    return form
