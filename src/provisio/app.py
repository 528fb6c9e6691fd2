"""The ASGI application: ``create_app()`` wires settings, the database and the routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from provisio import __version__
from provisio.api.install import install_api
from provisio.config import Settings, get_settings
from provisio.console.install import install_console
from provisio.db.engine import Database
from provisio.db.migrate import check_current
from provisio.domain import host_events
from provisio.domain.provisioning_log import prune_periodically
from provisio.guards import RejectNulMiddleware
from provisio.health import default_readiness, readyz
from provisio.logging import configure_logging
from provisio.metrics import MetricsMiddleware, ScrapeHook, metrics_endpoint, outbox_gauges
from provisio.notify.worker import OutboxWorker, outbox_health
from provisio.oauth.routes import router as oauth_router
from provisio.ratelimit import scim_limiter
from provisio.request_id import RequestIdMiddleware
from provisio.retry import DatabaseRetryMiddleware
from provisio.scim.paths import ScimTrailingSlashMiddleware
from provisio.scim.routes import install_scim


class MissingSecretKey(RuntimeError):
    pass


def secret_key_problem(settings: Settings, workers: int = 1) -> str | None:
    """Why this configuration cannot run without ``PROVISIO_SECRET_KEY``, or None.

    Without a key each process makes up its own: fine for one development process, but sessions, CSRF
    tokens and SCIM cursors then fail across workers (and restarts)."""
    if settings.secret_key:
        return None
    fix = (
        "Set PROVISIO_SECRET_KEY to a long random value shared by every process, e.g. the output of: "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
    if settings.secure_cookies:
        return f"PROVISIO_SECRET_KEY is not set and PROVISIO_BASE_URL is https (production). {fix}"
    if workers > 1:
        return f"PROVISIO_SECRET_KEY is not set and {workers} workers cannot share made-up keys. {fix}"
    return None


async def _client_disconnected(request: Request, exc: Exception) -> Response:
    """A form read that ended because the client left, or stalled past the body timeout and was answered
    408 by the server itself (provisio.http_limits): the client's doing, not a 500, and no answer reaches
    it (the SCIM API's body reader turns the same into a SCIM 408)."""
    return Response(status_code=408)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    problem = secret_key_problem(settings)
    if problem:
        raise MissingSecretKey(problem)
    if not settings.secret_key:
        # Development only (plain http, one process): cursors and sessions do not survive a restart.
        settings = settings.model_copy(update={"secret_key": secrets.token_urlsafe(32)})
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database.from_url(settings.database_url)
        limiter = None
        worker = None
        pruning: asyncio.Task[None] | None = None
        try:
            await check_current(db, settings.database_url)
            async with db.reading() as session:
                await host_events.check_clock(session)
            app.state.db = db
            app.state.limiter = limiter = scim_limiter(settings)
            if settings.outbox_worker:  # else `provisio worker` runs apart
                worker = OutboxWorker(db, settings)
                worker.start()
            if settings.log_prune_in_background:
                pruning = asyncio.create_task(prune_periodically(db, settings))
            # Everything loaded so far (models, schemas, compiled statements) lives as long as the
            # process: out of the collector's sight, a full collection no longer walks it (measured: a
            # few percent of a list page's CPU, and fewer long pauses).
            gc.collect()
            gc.freeze()
            yield
        finally:
            gc.unfreeze()
            if worker is not None:
                await worker.stop()
            if pruning is not None:
                pruning.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pruning
            if limiter is not None:
                await limiter.close()
            await db.dispose()

    app = FastAPI(
        title="provisio", version=__version__, lifespan=lifespan, docs_url="/api/docs", redoc_url=None
    )
    app.state.settings = settings
    # Middleware added first runs last: request id, NUL guard, trailing slashes, metrics, then the SCIM
    # API (which retries on a lost database connection itself), then the same retry for every other
    # request.
    app.add_middleware(DatabaseRetryMiddleware)
    install_scim(app)
    # Below INFO's level the access log is never written: the middleware then does not even call it.
    log_requests = settings.access_log and logging.getLevelName(settings.log_level.upper()) <= logging.INFO
    app.add_middleware(MetricsMiddleware, log_requests=log_requests)
    app.add_middleware(ScimTrailingSlashMiddleware)
    app.add_middleware(RejectNulMiddleware)
    app.add_middleware(RequestIdMiddleware)
    install_console(app)  # admin console, the consent page among its pages
    install_api(app)  # the management API (/api/v1), after the console: its error handlers chain
    app.include_router(oauth_router)  # the OAuth endpoints that clients call: token, revocation, metadata
    app.state.readiness = default_readiness(settings)
    app.add_api_route("/readyz", readyz, methods=["GET", "HEAD"], include_in_schema=False)
    # Run before each scrape to set gauges that are read from the database.
    scrape_hooks: list[ScrapeHook] = [outbox_gauges(outbox_health)]
    app.state.scrape_hooks = scrape_hooks
    if settings.metrics_enabled:
        app.add_api_route(
            "/metrics",
            metrics_endpoint(settings.metrics_token, scrape_hooks),
            methods=["GET"],
            include_in_schema=False,
        )
    app.add_exception_handler(ClientDisconnect, _client_disconnected)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def root() -> RedirectResponse:
        # The server's address, typed into a browser, leads to the console (which asks to sign in).
        return RedirectResponse("/console/", status_code=303)

    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app
