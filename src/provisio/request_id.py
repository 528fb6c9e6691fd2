"""Every request has an id: the one a proxy sent in ``X-Request-Id`` when it looks sane, else a new one.

It is returned on every response, bound into every log line of the request (structlog's contextvars)
and stored with the provisioning events the request causes, so an admin who quotes it from the log page
and an operator reading the server's logs are looking at the same request.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
MAX_LENGTH = 128
# What a proxy may hand us: printable and unambiguous in a log line or a CSV cell (no spaces, quotes or
# control characters); anything else is replaced rather than trusted.
_ACCEPTABLE = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_LENGTH}}}")

_current: ContextVar[str | None] = ContextVar("provisio_request_id", default=None)


def new_id() -> str:
    return secrets.token_hex(16)


def accepted(value: bytes | None) -> str | None:
    """The proxy's id when it can be used as it is, else None."""
    if not value:
        return None
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _ACCEPTABLE.fullmatch(text) else None


def current() -> str | None:
    """The id of the request being served in this task, or None outside a request."""
    return _current.get()


def of(scope: Scope) -> str | None:
    state = scope.get("state")
    value = state.get("request_id") if isinstance(state, dict) else None
    return value if isinstance(value, str) else current()


class RequestIdMiddleware:
    """Outermost middleware: picks the id, exposes it (``current()``, ``scope["state"]``, the log
    context) and adds ``X-Request-Id`` to the response, whoever produced it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((value for name, value in scope.get("headers", ()) if name == HEADER), None)
        request_id = accepted(sent) or new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        token = _current.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            _current.reset(token)
