"""The outbox migration upgrades and downgrades on both databases, and builds what the models declare."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from provisio.db.engine import Database
from provisio.db.migrate import alembic_config, upgrade
from provisio.db.models import Base
from tests.conftest import POSTGRES_ENV, _admin

OURS = ("outbox", "worker_heartbeats")


def _inspect(url: str) -> tuple[set[str], list[Any]]:
    def read(sync: Any) -> tuple[set[str], list[Any]]:
        diffs = compare_metadata(MigrationContext.configure(sync), Base.metadata)
        return set(inspect(sync).get_table_names()), [d for d in diffs if any(t in str(d) for t in OURS)]

    async def go() -> tuple[set[str], list[Any]]:
        db = Database.from_url(url, pool_size=1)
        try:
            async with db.read_engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await db.dispose()

    return asyncio.run(go())


def _round_trip(url: str) -> None:
    upgrade(url)
    tables, diffs = _inspect(url)
    assert set(OURS) <= tables and diffs == []
    command.downgrade(alembic_config(url), "0010")
    tables, _ = _inspect(url)
    assert not set(OURS) & tables and "workspaces" in tables
    upgrade(url)
    assert set(OURS) <= _inspect(url)[0]


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    if database_url.startswith("sqlite"):
        await loop.run_in_executor(None, _round_trip, f"sqlite:///{tmp_path / 'migrate.db'}")
        return
    admin = os.environ[POSTGRES_ENV]
    name = f"provisio_migrate_{uuid.uuid4().hex[:8]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        await loop.run_in_executor(None, _round_trip, url)
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
