"""Prometheus metrics and the access log: requests by route template (never raw paths: ids vary).

The middleware is on the SCIM hot path: per request it makes one cached lookup of its label children
and, when the access log is on, one log call. Labels stay few and bounded: method (known methods, else
``OTHER``), route template (``unmatched`` for every path no route serves) and status; never a
workspace or a user.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisio.db.engine import Database

REQUESTS = Counter("provisio_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("provisio_http_request_seconds", "HTTP request latency", ["method", "route", "status"])
PROVISIONING = Counter(
    "provisio_provisioning_events_total",
    "Provisioning events written to a workspace's log, by SCIM operation and outcome",
    ["operation", "outcome"],
)
OUTBOX_DEPTH = Gauge("provisio_outbox_depth", "Messages waiting in the outbox")
OUTBOX_OLDEST_AGE = Gauge(
    "provisio_outbox_oldest_age_seconds", "How long the oldest due outbox message has waited"
)
# E-mails of the outbox (provisio.notify.worker): each delivery, and each failed attempt (retried or not).
MAILS_SENT = Counter("provisio_mails_sent_total", "E-mails accepted by the SMTP server (or written out)")
MAILS_FAILED = Counter("provisio_mails_failed_total", "E-mail delivery attempts that failed")
# Webhook deliveries (provisio.notify.webhooks): every attempt by what came of it (``delivered``,
# ``http_error``, ``redirect``, ``timeout``, ``connection_refused``, ``address_refused``, …: the attempt
# log's error kinds), and the endpoints disabled by ``scope`` (``workspace`` or ``deployment``).
WEBHOOK_ATTEMPTS = Counter(
    "provisio_webhook_attempts_total", "Webhook delivery attempts by their outcome", ["outcome"]
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "provisio_webhook_endpoints_disabled_total",
    "Webhook endpoints disabled because deliveries kept failing (or answered 410 Gone)",
    ["scope"],
)

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes come every few seconds: logged only when they fail.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

log = structlog.get_logger("provisio.metrics")


@functools.lru_cache(maxsize=1024)
def _children(method: str, template: str, status: int) -> tuple[Any, Any]:
    # labels() builds and hashes a key on every call; the set of routes, methods and statuses is small.
    if method not in _METHODS:
        method = "OTHER"  # a client may send any token as a method: no label per made-up method
    code = str(status)
    return REQUESTS.labels(method, template, code), LATENCY.labels(method, template, code)


@functools.lru_cache(maxsize=64)
def _provisioning(operation: str, outcome: str) -> Any:
    return PROVISIONING.labels(operation, outcome)


def webhook_attempt(outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


def webhook_endpoint_disabled(scope: str) -> None:
    WEBHOOK_ENDPOINTS_DISABLED.labels(scope).inc()


def provisioning_event(operation: str, outcome: str) -> None:
    """Count one provisioning event (SCIM operations and outcomes are a small fixed set)."""
    _provisioning(operation, outcome).inc()


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests
        # A logger of this app's own: one made at import would keep the first configuration it met.
        self.log = structlog.get_logger("provisio.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED)
            method = scope["method"]
            counter, histogram = _children(method, template, status)
            counter.inc()
            histogram.observe(elapsed)
            if self.log_requests and (status >= 400 or template not in _QUIET_ROUTES):
                # The template, never the path or query string: ids and credentials can be in those.
                # The request id comes from the log context (provisio.request_id).
                self.log.info(
                    "http.request",
                    method=method if method in _METHODS else "OTHER",
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )


# Run before each scrape to set gauges from the database (e.g. the outbox's depth).
ScrapeHook = Callable[[Database], Awaitable[None]]
SCRAPE_HOOK_TIMEOUT_S = 5.0

# What an outbox reports: depth, oldest_due_age_seconds, last_heartbeat_age_seconds.
OutboxHealth = Callable[[Database], Awaitable[dict[str, Any]]]


def outbox_gauges(provider: OutboxHealth) -> ScrapeHook:
    """A scrape hook that sets the outbox gauges from ``provider``'s report."""

    async def hook(db: Database) -> None:
        report = await provider(db)
        OUTBOX_DEPTH.set(report.get("depth") or 0)
        OUTBOX_OLDEST_AGE.set(report.get("oldest_due_age_seconds") or 0)

    return hook


def metrics_endpoint(token: str, hooks: list[ScrapeHook]) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``: Prometheus text, behind a bearer token when ``token`` is set."""
    expected = token.encode()

    async def endpoint(request: Request) -> Response:
        if token:
            scheme, _, sent = request.headers.get("authorization", "").partition(" ")
            given = sent.strip().encode("utf-8", "replace")
            # compare_digest takes as long whatever prefix matches: the token cannot be guessed byte
            # by byte from response times.
            if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
                return Response(
                    "A bearer token is required.\n",
                    status_code=401,
                    media_type="text/plain",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        for hook in hooks:
            try:
                await asyncio.wait_for(hook(request.app.state.db), SCRAPE_HOOK_TIMEOUT_S)
            except Exception as exc:
                # A gauge that cannot be read keeps its last value; the rest of the scrape still counts.
                log.warning("metrics.hook_failed", hook=_name(hook), error=type(exc).__name__)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return endpoint


def _name(hook: ScrapeHook) -> str:
    return getattr(hook, "__qualname__", type(hook).__name__)
