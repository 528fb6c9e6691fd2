"""The console's and OAuth's answer to an unavailable database: run the request once more when that is
safe, else 503 with ``Retry-After`` (never a 500).

The rules of when a re-run is safe are ``provisio.db.availability``'s; this middleware keeps what a
re-run needs: the request body as the first run received it, and whether a response has started (after
which neither a re-run nor a 503 can be sent). The SCIM API does the same in its own dispatcher
(``provisio.scim.dispatch``), so this middleware sits inside it and sees only the other requests.
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisio.console.templating import render
from provisio.db.availability import RETRY_AFTER_SECONDS, DatabaseUnavailable, retry_once
from provisio.scim.errors import SERVICE_UNAVAILABLE
from provisio.scim.responses import error_response
from provisio.surfaces import Surface, surface

log = structlog.get_logger("provisio.db")


class DatabaseRetryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received: list[Message] = []  # the body messages read so far, for a second run
        replay: list[Message] = []
        started = False

        async def receive_once() -> Message:
            if replay:
                return replay.pop(0)
            message = await receive()
            if message["type"] == "http.request":
                received.append(message)
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def run() -> None:
            replay[:] = received
            try:
                await self.app(scope, receive_once, send_tracked)
            except DatabaseUnavailable as exc:
                if started:
                    exc.retryable = False
                raise

        try:
            await retry_once(run)
        except DatabaseUnavailable as exc:
            if started:
                raise
            # The route's template, never the path: a sign-in or set-password link's token is in it.
            route = getattr(scope.get("route"), "path", "unmatched")
            log.warning("http.unavailable", route=route, method=scope["method"], error=exc.detail)
            await unavailable_response(scope)(scope, receive, send)


def unavailable_response(scope: Scope) -> Response:
    """503 in the form of the surface asked: a SCIM Error, OAuth error JSON, a page, else plain text."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    kind = surface(scope["path"])
    if kind is Surface.SCIM:
        return error_response(SERVICE_UNAVAILABLE, headers)
    if kind is Surface.OAUTH_CLIENT:
        # RFC 6749's code for this condition.
        body = {"error": "temporarily_unavailable", "error_description": SERVICE_UNAVAILABLE.detail}
        return JSONResponse(body, status_code=503, headers=headers)
    if kind is Surface.API:
        problem: dict[str, object] = {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": SERVICE_UNAVAILABLE.detail,
        }
        return JSONResponse(problem, status_code=503, headers=headers, media_type="application/problem+json")
    if kind is Surface.PAGE:
        # The authorization endpoint cannot redirect to the client here: it could not check the
        # client's redirect URI. Nobody is known to be signed in: that check needs the database too.
        request = Request(scope)
        if not hasattr(request.state, "signed_in"):
            request.state.signed_in = None
        context = {"title": "Temporarily unavailable", "message": SERVICE_UNAVAILABLE.detail, "who": None}
        response = render(request, "error.html", context, 503)
        response.headers.update(headers)
        return response
    return PlainTextResponse(SERVICE_UNAVAILABLE.detail, status_code=503, headers=headers)
