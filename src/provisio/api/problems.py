"""RFC 9457 problem documents: every answer of ``/api/v1`` that is not 2xx, the framework's own (an
unknown route, a method a route does not take, a body or query that does not validate) included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from provisio.domain.errors import DomainError, Kind

API_PREFIX = "/api/v1"
# Identifiers, not addresses: no page is promised at them (RFC 9457 §3.1.1 allows that).
PROBLEM_TYPE_BASE = "urn:provisio:problem:"
MEDIA_TYPE = "application/problem+json"
# How OpenAPI describes an answer that is a problem document (each route module adds its own wording).
PROBLEM = {"content": {MEDIA_TYPE: {}}, "description": "A problem document (RFC 9457)."}

STATUS = {
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.PRECONDITION: 412,
    Kind.FORBIDDEN: 403,
    Kind.INVALID: 400,
}
TITLES = {
    400: "Invalid request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Validation failed",
}
TYPES = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    422: "validation-failed",
}


class Problem(Exception):
    """An API refusal that is not a domain rule's (authentication, a malformed cursor); ``extra``:
    members of the problem document beside the standard ones (e.g. ``errors``)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extra = extra  # more members of the document, e.g. ``errors``


def is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _instance(request: Request) -> str:
    """The path as the client sent it (``%2F`` stays escaped), without the query."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return request.url.path


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    type_: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (type_ or TYPES.get(status, "error")),
        "title": TITLES.get(status, "Request refused"),
        "status": status,
        "detail": detail,
        "instance": _instance(request),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "seats")`` → ``seats``; ``("query", "limit")`` → ``limit``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        loc = error.get("loc", ())
        errors.append(
            {"field": _field(loc), "in": str(loc[0]) if loc else "body", "detail": str(error.get("msg", ""))}
        )
    return errors


def _allowed(routes: Sequence[BaseRoute], request: Request) -> list[str]:
    """Every method some API route takes at this path (the router names only the first route's)."""
    methods: set[str] = set()
    for route in routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


class _NoEndpoint(BaseRoute):
    """Every API path that no API route takes, in any method: a 404 here. Without it the router would
    redirect a path to the one it becomes with or without a trailing slash (``/workspaces/%2F`` to
    ``/workspaces``), which a client following redirects would then answer in place of its own."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not is_api(scope.get("path", "")):
            return Match.NONE, {}
        if any(route.matches(scope)[0] is not Match.NONE for route in self.routes):
            return Match.NONE, {}  # a route's own answer (or its 405) stands
        return Match.FULL, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise StarletteHTTPException(404)


def install_problems(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Answer ``/api/v1`` errors as problem documents; every other path keeps the handler it had (the
    console's pages, the framework's JSON)."""
    previous_http: Any = app.exception_handlers.get(StarletteHTTPException)
    previous_validation: Any = app.exception_handlers.get(RequestValidationError)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not is_api(request.url.path) and previous_http is not None:
            return await previous_http(request, exc)
        if not is_api(request.url.path):
            from fastapi.exception_handlers import http_exception_handler

            return await http_exception_handler(request, exc)
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Request refused")
        if exc.status_code == 404:
            detail = f"There is no API endpoint at {request.url.path}."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
            headers["Allow"] = ", ".join(_allowed(routes, request))
        return problem(request, exc.status_code, detail, headers=headers or None)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not is_api(request.url.path):
            if previous_validation is not None:
                return await previous_validation(request, exc)
            from fastapi.exception_handlers import request_validation_exception_handler

            return await request_validation_exception_handler(request, exc)
        errors = validation_errors(exc)
        named = ", ".join(sorted({e["field"] for e in errors}))
        return problem(request, 422, f"The request has invalid fields: {named}.", errors=errors)

    async def on_domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        if not is_api(request.url.path):
            raise exc  # elsewhere a DomainError that escapes is what it was before: a server error
        extra: dict[str, Any] = {"reason": exc.reason.value} if exc.reason else {}
        return problem(request, STATUS[exc.kind], exc.detail, type_=exc.kind.value.replace("_", "-"), **extra)

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem(request, exc.status, exc.detail, headers=exc.headers, **exc.extra)

    app.router.routes.append(_NoEndpoint(routes))
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(DomainError, on_domain)
