"""Mount the management API on the application."""

from __future__ import annotations

from fastapi import FastAPI

from provisio.api.events import router as events_router
from provisio.api.portal import router as portal_router
from provisio.api.problems import install_problems
from provisio.api.routes import router
from provisio.api.webhooks import router as webhooks_router


def install_api(app: FastAPI) -> None:
    """After the console: the API's error handlers answer its own paths and hand the rest back."""
    app.include_router(router)
    app.include_router(portal_router)
    app.include_router(events_router)
    app.include_router(webhooks_router)
    install_problems(
        app, [*router.routes, *portal_router.routes, *events_router.routes, *webhooks_router.routes]
    )
