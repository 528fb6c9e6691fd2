"""CSRF protection for every console form: a random cookie and, in the form, its HMAC under the secret key.

A cross-site page can make the browser send the cookie but can neither read it nor compute the HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings

COOKIE = "provisio_csrf"
FIELD = "csrf_token"


class CsrfFailed(Exception):
    pass


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _sign(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{value}".encode(), hashlib.sha256).hexdigest()


def form_token(request: Request) -> str:
    """The token to put in forms, creating the cookie (sent by ``attach_cookie``) when there is none."""
    value = request.cookies.get(COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    if not value or len(value) < 32:
        value = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = value
    return _sign(_settings(request).secret_key, value)


def attach_cookie(request: Request, response: Response) -> None:
    value = getattr(request.state, "new_csrf_cookie", None)
    if value:
        response.set_cookie(
            COOKIE, value, httponly=True, samesite="lax", secure=_settings(request).secure_cookies, path="/"
        )


async def verify(request: Request) -> FormData:
    """The submitted form, if it carries a valid token; otherwise ``CsrfFailed``."""
    form = await request.form()
    cookie = request.cookies.get(COOKIE, "")
    sent = form.get(FIELD)
    if not cookie or not isinstance(sent, str):
        raise CsrfFailed
    if not hmac.compare_digest(sent, _sign(_settings(request).secret_key, cookie)):
        raise CsrfFailed
    return form
