"""Prometheus metrics: request counts and latencies by route template (never raw paths: ids vary)."""

from __future__ import annotations

import functools
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("provisio_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("provisio_http_request_seconds", "HTTP request latency", ["method", "route"])


@functools.lru_cache(maxsize=1024)
def _counter(method: str, template: str, status: int) -> Any:
    # labels() builds and hashes a key on every call; the set of routes, methods and statuses is small.
    return REQUESTS.labels(method, template, str(status))


@functools.lru_cache(maxsize=1024)
def _histogram(method: str, template: str) -> Any:
    return LATENCY.labels(method, template)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            _counter(scope["method"], template, status).inc()
            _histogram(scope["method"], template).observe(time.perf_counter() - start)


async def metrics_endpoint(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# E-mails of the outbox (provisio.notify.worker): each delivery, and each failed attempt (retried or not).
MAILS_SENT = Counter("provisio_mails_sent_total", "E-mails accepted by the SMTP server (or written out)")
MAILS_FAILED = Counter("provisio_mails_failed_total", "E-mail delivery attempts that failed")
