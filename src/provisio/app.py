"""The ASGI application: ``create_app()`` wires settings, the database and the routers."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from provisio import __version__
from provisio.config import Settings, get_settings
from provisio.console.install import install_console
from provisio.db.engine import Database
from provisio.db.migrate import check_current
from provisio.guards import RejectNulMiddleware
from provisio.logging import configure_logging
from provisio.metrics import MetricsMiddleware, metrics_endpoint
from provisio.scim.paths import ScimTrailingSlashMiddleware
from provisio.scim.routes import router as scim_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.secret_key:
        # Development only: cursors and sessions then do not survive a restart. Set PROVISIO_SECRET_KEY.
        settings = settings.model_copy(update={"secret_key": secrets.token_urlsafe(32)})
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database.from_url(settings.database_url)
        try:
            await check_current(db, settings.database_url)
            app.state.db = db
            yield
        finally:
            await db.dispose()

    app = FastAPI(
        title="provisio", version=__version__, lifespan=lifespan, docs_url="/api/docs", redoc_url=None
    )
    app.state.settings = settings
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(ScimTrailingSlashMiddleware)
    app.add_middleware(RejectNulMiddleware)
    app.include_router(scim_router)
    install_console(app)  # admin console, consent page and OAuth endpoints (provisio.console, provisio.oauth)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app
