"""Databases for the filter tests: a temp SQLite file and, when PROVISIO_TEST_POSTGRES_URL is set,
a freshly created PostgreSQL database (dropped afterwards). Local to tests/scim on purpose."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from provisio.db.engine import Database, async_url
from provisio.db.models import Base

PG_URL = os.environ.get("PROVISIO_TEST_POSTGRES_URL")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="PROVISIO_TEST_POSTGRES_URL is not set"),
    ),
]


@pytest.fixture(scope="module", params=BACKENDS)
async def filter_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("filters") / "provisio.db"
        db = Database.from_url(f"sqlite:///{path}")
        await _create_tables(db)
        yield db
        await db.dispose()
        return

    assert PG_URL
    name = f"provisio_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(async_url(PG_URL), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    db = Database.from_url(make_url(PG_URL).set(database=name), pool_size=2)
    try:
        await _create_tables(db)
        yield db
    finally:
        await db.dispose()
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


async def _create_tables(db: Database) -> None:
    async with db.write_engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
