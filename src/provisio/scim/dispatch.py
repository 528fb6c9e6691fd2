"""Routing of ``/scim/v2/{workspace}/…`` to the SCIM handlers, and every failure to a SCIM Error.

The SCIM API is the hot path of the server (an IdP syncing a directory sends thousands of requests),
so it skips FastAPI's per-request machinery: dependency solving, parameter validation and route
matching cost more than a SCIM lookup itself (a profile of GET by id under ``make bench``: dependency
solving alone took 16 % of the server's CPU, the FastAPI routing layers as much again). The
URL space is small and fixed, so a dictionary picks the handler. The FastAPI app hands every SCIM path
to this middleware before its own routing; the console, OAuth and metrics stay FastAPI routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from provisio.db.availability import RETRY_AFTER_SECONDS, DatabaseUnavailable, retry_once
from provisio.domain import connection_status
from provisio.domain.errors import DomainError
from provisio.scim.auth import Unauthorized
from provisio.scim.call import ScimCall
from provisio.scim.errors import (
    INTERNAL_ERROR,
    SERVICE_UNAVAILABLE,
    MethodNotAllowed,
    RateLimited,
    ScimError,
)
from provisio.scim.paths import SCIM_PREFIX, app_path
from provisio.scim.request_log import log_failure
from provisio.scim.responses import error_response, from_domain

log = structlog.get_logger("provisio.scim")

NO_WORKSPACE = ScimError(404, "No workspace in the URL: the Tenant URL is /scim/v2/{workspace key}.")

Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    """A matched URL template; ``path`` is what metrics label requests with (never the raw path),
    ``action`` the operation the provisioning log names, and ``member`` whether the id argument is a
    member's."""

    path: str
    handler: Handler
    action: str = "request"
    member: bool = False


# (method, first segment, second segment) -> route; the second is "" when there is none, a literal such
# as ".search", or ``ID`` for an id (passed to the handler). Segments match exactly, as RFC 7644 spells
# them. ``ID`` is not a string, so no path segment (not even a literal "*", ``%2A``) can match it as one.
ID = None
RouteTable = dict[tuple[str, str, str | None], Route]


def resolve(
    table: RouteTable, fallback: Handler, method: str, segments: list[str]
) -> tuple[Route, list[str]]:
    """The route for ``segments`` (the path after the workspace key) and the handler's arguments."""
    if len(segments) == 1:
        route = table.get((method, segments[0], ""))
        if route is not None:
            return route, []
    elif len(segments) == 2 and segments[1]:
        route = table.get((method, segments[0], segments[1]))
        if route is not None:
            return route, []
        route = table.get((method, segments[0], ID))
        if route is not None:
            return route, segments[1:]
    return Route(SCIM_PREFIX + "{workspace_key}/{rest:path}", fallback), ["/".join(segments)]


class ScimDispatchMiddleware:
    def __init__(self, app: ASGIApp, table: RouteTable, fallback: Handler) -> None:
        self.app = app
        self.table = table
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = app_path(scope)
        if scope["type"] != "http" or not (path.startswith(SCIM_PREFIX) or path + "/" == SCIM_PREFIX):
            await self.app(scope, receive, send)
            return
        key, _, rest = path[len(SCIM_PREFIX) :].partition("/")
        if not key:
            # Below the SCIM root but with no workspace: still a SCIM client, answered in SCIM's terms.
            await error_response(NO_WORKSPACE)(scope, receive, send)
            return
        # HEAD is GET without the body (RFC 9110 §9.3.2); the server leaves the body out.
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        route, args = resolve(self.table, self.fallback, method, rest.split("/") if rest else [])
        scope["route"] = route
        request = Request(scope, receive)
        state = scope["app"].state
        call = ScimCall(
            request=request,
            db=state.db,
            settings=state.settings,
            workspace_key=key,
            limiter=state.limiter,
            action=route.action,
            member_id=args[0] if route.member and args else None,
        )
        response = await _run(call, route.handler, args)
        await response(scope, receive, send)


async def _run(call: ScimCall, handler: Handler, args: list[str]) -> Response:
    try:
        response = await retry_once(lambda: handler(call.start_over(), *args))
        caller = call.caller
        if caller is not None and response.status_code < 400:
            await connection_status.note_success(
                call.db,
                workspace_id=caller.workspace.id,
                action=call.action,
                status=response.status_code,
                user_agent=call.request.headers.get("user-agent"),
                credential=caller.credential,
            )
        return response
    except DatabaseUnavailable as exc:
        # Not in the provisioning log: the database that would take the line is the one missing.
        log.warning(
            "scim.unavailable", path=call.request.url.path, method=call.request.method, error=exc.detail
        )
        return error_response(SERVICE_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    except ScimError as exc:
        error = exc
    except DomainError as exc:
        error = from_domain(exc)
    except Exception:
        log.exception("scim.internal_error", path=call.request.url.path, method=call.request.method)
        error = INTERNAL_ERROR
    if error.status != 408:  # the client left: nobody is told anything, and nothing is logged
        try:
            await log_failure(call, error)
        except Exception:
            # The log describes the answer; it must never be what changes it.
            log.warning("scim.log_failed", path=call.request.url.path, status=error.status, exc_info=True)
    return _error_answer(error)


def _error_answer(error: ScimError) -> Response:
    if isinstance(error, Unauthorized):
        return error_response(error, {"WWW-Authenticate": error.challenge})
    if isinstance(error, MethodNotAllowed):
        return error_response(error, {"Allow": error.allow})
    if isinstance(error, RateLimited):
        return error_response(error, {"Retry-After": str(error.retry_after)})
    return error_response(error)
