"""The provisioning log's migration upgrades and downgrades on both databases and matches the models."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url

from provisio.db.engine import Database
from provisio.db.migrate import alembic_config, upgrade
from provisio.db.models import Base
from tests.conftest import POSTGRES_ENV, _admin

NEW_COLUMNS = {"request_id", "credential", "user_agent", "scim_type", "duration_ms", "request_body"}
NEW_COLUMNS |= {"repeats", "last_at", "aggregate_key"}


def _columns_and_diff(url: str) -> tuple[set[str], list[Any]]:
    def read(conn: Connection) -> tuple[set[str], list[Any]]:
        described = inspect(conn).get_columns("provisioning_events")
        columns = {c["name"] for c in described}
        if conn.dialect.name == "postgresql" and "request_id" in columns:
            # userNames compare by code point, so that a userName prefix is an index range.
            user_name = next(c for c in described if c["name"] == "user_name")
            assert user_name["type"].collation == "C"
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        return columns, [d for d in diff if "provisioning_events" in repr(d)]

    async def run() -> tuple[set[str], list[Any]]:
        db = Database.from_url(url, pool_size=1)
        try:
            async with db.read_engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _round_trip(url: str) -> None:
    upgrade(url)
    columns, diff = _columns_and_diff(url)
    assert columns >= NEW_COLUMNS
    assert diff == []  # the migration makes exactly what the models declare
    command.downgrade(alembic_config(url), "0010")
    columns, _ = _columns_and_diff(url)
    assert not NEW_COLUMNS & columns and "detail" in columns
    upgrade(url)
    assert _columns_and_diff(url)[0] >= NEW_COLUMNS


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
