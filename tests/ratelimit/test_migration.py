"""The rate-limit table's migration upgrades and downgrades on both databases."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from provisio.db.engine import Database
from provisio.db.migrate import alembic_config, upgrade
from tests.conftest import POSTGRES_ENV, _admin


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        db = Database.from_url(url, pool_size=1)
        try:
            async with db.read_engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await db.dispose()

    return asyncio.run(read())


def _round_trip(url: str) -> None:
    upgrade(url)
    assert "rate_limit_buckets" in _tables(url)
    command.downgrade(alembic_config(url), "0006")
    tables = _tables(url)
    assert "rate_limit_buckets" not in tables and "member_buckets" in tables
    upgrade(url)
    assert "rate_limit_buckets" in _tables(url)


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    if database_url.startswith("sqlite"):
        await loop.run_in_executor(None, _round_trip, f"sqlite:///{tmp_path / 'migrate.db'}")
        return
    import os

    admin = os.environ[POSTGRES_ENV]
    name = f"provisio_migrate_{uuid.uuid4().hex[:8]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        await loop.run_in_executor(None, _round_trip, url)
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
