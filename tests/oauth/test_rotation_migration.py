"""The credential-rotation migration (previous client secrets, bearer token expiry, one-time reveals)
upgrades and downgrades on both databases, keeping the clients it finds."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from provisio.db.engine import Database
from provisio.db.migrate import alembic_config, upgrade
from tests.conftest import POSTGRES_ENV, _admin


def _inspect(sync: Connection) -> tuple[set[str], set[str], int]:
    columns = {c["name"] for c in inspect(sync).get_columns("oauth_clients")}
    columns |= {f"scim_tokens.{c['name']}" for c in inspect(sync).get_columns("scim_tokens")}
    clients = sync.execute(text("SELECT count(*) FROM oauth_clients")).scalar_one()
    return set(inspect(sync).get_table_names()), columns, clients


def _schema(url: str) -> tuple[set[str], set[str], int]:
    async def read() -> tuple[set[str], set[str], int]:
        db = Database.from_url(url, pool_size=1)
        try:
            async with db.read_engine.connect() as conn:
                return await conn.run_sync(_inspect)
        finally:
            await db.dispose()

    return asyncio.run(read())


def _seed_client(url: str) -> None:
    async def write() -> None:
        db = Database.from_url(url, pool_size=1)
        try:
            async with db.writing() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO workspaces (id, key, name, created_at, scim_enabled, seats_purchased, "
                        "scim_auth_method, license_auto_charge, member_count, allow_other_domains) "
                        "VALUES ('w1', 'w1', 'W', CURRENT_TIMESTAMP, false, 0, 'client_credentials', "
                        "false, 0, false)"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO oauth_clients (id, workspace_id, client_id, secret_hash, grant_method, "
                        "created_at) VALUES ('c1', 'w1', 'pvc_1', 'h', 'client_credentials', "
                        "CURRENT_TIMESTAMP)"
                    )
                )
        finally:
            await db.dispose()

    asyncio.run(write())


ADDED = {
    "secret_hint",
    "previous_secret_hash",
    "previous_secret_hint",
    "previous_secret_expires_at",
    "scim_tokens.expires_at",
}


def _round_trip(url: str) -> None:
    command.upgrade(alembic_config(url), "0008")
    _seed_client(url)
    upgrade(url)
    tables, columns, clients = _schema(url)
    assert "credential_reveals" in tables and columns >= ADDED and clients == 1
    command.downgrade(alembic_config(url), "0008")
    tables, columns, clients = _schema(url)
    assert "credential_reveals" not in tables and not ADDED & columns and clients == 1
    upgrade(url)
    tables, columns, _ = _schema(url)
    assert "credential_reveals" in tables and columns >= ADDED


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
