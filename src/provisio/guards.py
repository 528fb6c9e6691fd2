"""Refuse NUL characters in URLs before anything reaches a database.

PostgreSQL cannot store or compare text containing NUL; a path like ``/Users/%00`` or a filter with
``\\u0000`` would otherwise end as a driver error (a 500) instead of the client's mistake (a 400).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from provisio.scim.errors import INVALID_VALUE, ScimError
from provisio.surfaces import Surface, surface

DETAIL = "The request URL contains a NUL character (%00), which no identifier or value may contain."
# A page that stands on its own, for a person's browser.
PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bad address</title></head>'
    f'<body><h1>Bad address</h1><p>{DETAIL}</p><p><a href="/console/">Go to the console</a></p></body></html>'
)


def has_nul(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    query: bytes = scope.get("query_string", b"")
    return "\x00" in path or b"\x00" in unquote_to_bytes(query) or b"\x00" in unquote_to_bytes(path.encode())


class RejectNulMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_nul(scope):
            await self.app(scope, receive, send)
            return
        kind = surface(scope["path"])
        if kind is Surface.SCIM:
            body = orjson.dumps(ScimError(400, DETAIL, INVALID_VALUE).to_body())
            content_type = b"application/scim+json"
        elif kind is Surface.OAUTH_CLIENT:
            body = orjson.dumps({"error": "invalid_request", "error_description": DETAIL})
            content_type = b"application/json"
        elif kind is Surface.API:
            problem = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": DETAIL}
            body, content_type = orjson.dumps(problem), b"application/problem+json"
        elif kind is Surface.PAGE:  # before any route (and so before the console's templates)
            body, content_type = PAGE.encode(), b"text/html; charset=utf-8"
        else:
            body, content_type = DETAIL.encode(), b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),  # an error is not worth keeping (RFC 6749 §5.1)
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
