"""Apps of the operations tests' own, beside the session's shared one: other settings, other databases."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.notify.worker import OutboxWorker, outbox_health
from tests.conftest import BASE_URL, POSTGRES_ENV, _admin


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app started as the server starts it (its lifespan checks the database first)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_of(app) as client:
        yield app, client


@asynccontextmanager
async def running_on(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app whose database went wrong after it started (gone, or its schema moved back): the
    lifespan would refuse to start on it, so the database is attached as the lifespan attaches it."""
    app = create_app(settings)
    app.state.db = db = Database.from_url(settings.database_url)
    app.state.limiter = None
    try:
        async with client_of(app) as client:
            yield app, client
    finally:
        await db.dispose()


@asynccontextmanager
async def scratch_database(database_url: str, tmp_path: Path, revision: str) -> AsyncIterator[str]:
    """A new database of ``database_url``'s kind, migrated to ``revision``, dropped afterwards."""
    loop = asyncio.get_running_loop()
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / f'scratch_{uuid.uuid4().hex[:8]}.db'}"
        await loop.run_in_executor(None, upgrade, url, revision)
        yield url
        return
    admin = os.environ[POSTGRES_ENV]
    name = f"provisio_ops_{uuid.uuid4().hex[:8]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        await loop.run_in_executor(None, upgrade, url, revision)
        yield url
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def outbox_worker(db: Database, settings: Settings, mail_dir: Path) -> AsyncIterator[OutboxWorker]:
    """A real outbox worker on ``db``, running and past its first heartbeat: what /readyz asks for."""
    worker = OutboxWorker(db, settings.model_copy(update={"mail_dir": str(mail_dir), "smtp_host": ""}))
    worker.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while (await outbox_health(db))["last_heartbeat_age_seconds"] is None:
            assert asyncio.get_running_loop().time() < deadline, "the outbox worker never beat"
            await asyncio.sleep(0.05)
        yield worker
    finally:
        await worker.stop()
