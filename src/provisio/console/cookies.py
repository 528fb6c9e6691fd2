"""The console's cookies: the one place that decides their names and flags.

Over https every cookie is ``__Host-`` prefixed, which browsers accept only with ``Secure``, ``Path=/``
and no ``Domain``: a sibling subdomain or a plain-http hop cannot set or overwrite it, and a cookie
planted under the bare name is never read. Over plain http (development) browsers refuse the prefix, so
the bare name is used.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings

SESSION = "provisio_session"
CSRF = "provisio_csrf"
HOST_PREFIX = "__Host-"


def cookie_name(settings: Settings, base: str) -> str:
    return HOST_PREFIX + base if settings.secure_cookies else base


def read(request: Request, settings: Settings, base: str) -> str | None:
    return request.cookies.get(cookie_name(settings, base))


def store(response: Response, settings: Settings, base: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        cookie_name(settings, base),
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def remove(response: Response, settings: Settings, base: str) -> None:
    response.delete_cookie(
        cookie_name(settings, base), path="/", httponly=True, samesite="lax", secure=settings.secure_cookies
    )
