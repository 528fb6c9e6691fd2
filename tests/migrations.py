"""What the migration round-trip tests share: a database of their own (a fresh SQLite file, or a fresh
PostgreSQL database dropped afterwards), Alembic's commands, and blocking reads and writes on it.

A round trip is a blocking function of the database URL: Alembic's env runs its own event loop, which
cannot nest inside pytest-asyncio's, so ``round_trip_on_fresh_database`` runs it in a worker thread,
and the helpers below each run their own loop too.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from provisio.db.engine import Database
from provisio.db.migrate import alembic_config, upgrade
from provisio.db.models import Base
from tests.conftest import POSTGRES_ENV, _admin

T = TypeVar("T")


async def round_trip_on_fresh_database(
    database_url: str, tmp_path: Path, round_trip: Callable[[str], None]
) -> None:
    """Run ``round_trip(url)`` on an empty database of ``database_url``'s backend, made for it alone."""
    loop = asyncio.get_running_loop()
    if database_url.startswith("sqlite"):
        await loop.run_in_executor(None, round_trip, f"sqlite:///{tmp_path / 'migrate.db'}")
        return
    admin = os.environ[POSTGRES_ENV]
    name = f"provisio_migrate_{uuid.uuid4().hex[:8]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        await loop.run_in_executor(None, round_trip, url)
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def upgrade_to(url: str, revision: str = "head") -> None:
    if revision == "head":
        upgrade(url)
    else:
        command.upgrade(alembic_config(url), revision)


def downgrade_to(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def read(url: str, inspect: Callable[[Connection], T]) -> T:
    """``inspect`` run on a connection of the database, as the server's reads see it."""

    async def go() -> T:
        db = Database.from_url(url, pool_size=1)
        try:
            async with db.read_engine.connect() as conn:
                return await conn.run_sync(inspect)
        finally:
            await db.dispose()

    return asyncio.run(go())


def execute(url: str, statements: Sequence[str]) -> None:
    """Plain SQL statements in one write transaction, as a row written without the ORM would be."""

    async def go() -> None:
        db = Database.from_url(url, pool_size=1)
        try:
            async with db.writing() as session:
                for statement in statements:
                    await session.execute(text(statement))
        finally:
            await db.dispose()

    asyncio.run(go())


def model_diff(conn: Connection, tables: Iterable[str], **options: Any) -> list[Any]:
    """What the schema lacks or has beyond the models, among the differences that name ``tables``
    (``options``: Alembic's comparison options, e.g. ``compare_server_default=True``)."""
    diffs = compare_metadata(MigrationContext.configure(conn, opts=options), Base.metadata)
    names = tuple(tables)
    return [d for d in diffs if any(name in repr(d) for name in names)]
