"""Pruning the provisioning log (in batches, by retention, from the server and the CLI) and the CLI's
``provisio log`` JSON contract."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, insert, select

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent, utcnow
from provisio.domain import provisioning_log
from tests.conftest import make_tenant
from tests.domain.test_cli import cli, fails, ok


async def _add(db: Database, workspace_id: str, count: int, age: timedelta, **extra: object) -> None:
    at = utcnow() - age
    row = {
        "workspace_id": workspace_id,
        "at": at,
        "actor": "OAuth client okta",
        "action": "create",
        "outcome": "success",
        "status": 201,
        "repeats": 1,
    }
    async with db.writing() as session:
        await session.execute(insert(ProvisioningEvent), [row | extra for _ in range(count)])


async def _count(db: Database, workspace_id: str) -> int:
    async with db.reading() as session:
        found = await session.scalar(
            select(func.count()).where(ProvisioningEvent.workspace_id == workspace_id)
        )
        return int(found or 0)


async def test_prune_deletes_old_events_in_batches(db: Database) -> None:
    tenant = await make_tenant(db)
    await _add(db, tenant.id, 2500, timedelta(days=400))
    await _add(db, tenant.id, 3, timedelta(days=1))
    # A repeated refusal first seen long ago but repeated lately stays.
    await _add(
        db, tenant.id, 1, timedelta(days=400), status=401, outcome="failure", repeats=5, last_at=utcnow()
    )
    deleted = await provisioning_log.prune(db, 365, batch=1000, pause_seconds=0)
    assert deleted >= 2500
    assert await _count(db, tenant.id) == 4
    assert await provisioning_log.prune(db, 365, batch=1000, pause_seconds=0) == 0


async def test_the_server_prunes_in_the_background(db: Database, settings: Settings) -> None:
    tenant = await make_tenant(db)
    await _add(db, tenant.id, 3, timedelta(days=30))
    quick = settings.model_copy(update={"log_retention_days": 7, "log_prune_interval_seconds": 0.05})
    task = asyncio.create_task(provisioning_log.prune_periodically(db, quick))
    try:
        for _ in range(100):
            if await _count(db, tenant.id) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert await _count(db, tenant.id) == 0


async def test_cli_log_json_contract_and_prune(database_url: str, db: Database) -> None:
    tenant = await make_tenant(db)
    await _add(db, tenant.id, 2, timedelta(hours=2), user_name="ada@acme.example", request_id="r-old")
    await _add(
        db,
        tenant.id,
        1,
        timedelta(hours=1),
        user_name="bob@acme.example",
        outcome="failure",
        status=409,
        detail="userName is taken",
        request_id="r-new",
    )
    rows = ok(cli(database_url, "log", tenant.key, "--json"))
    assert isinstance(rows, list) and len(rows) == 3
    for row in rows:
        assert {"at", "operation", "outcome", "status", "user_name", "detail", "request_id"} <= row.keys()
    assert rows[0]["request_id"] == "r-new" and rows[0]["detail"] == "userName is taken"
    assert [r["at"] for r in rows] == sorted((r["at"] for r in rows), reverse=True)
    failures = ok(cli(database_url, "log", tenant.key, "--outcome", "failure", "--limit", "5", "--json"))
    assert [(r["user_name"], r["status"], r["outcome"]) for r in failures] == [
        ("bob@acme.example", 409, "failure")
    ]
    assert len(ok(cli(database_url, "log", tenant.key, "--limit", "1", "--json"))) == 1
    table = cli(database_url, "log", tenant.key)
    assert table.returncode == 0 and "bob@acme.example" in table.stdout and "409" in table.stdout
    assert "Outcome must be one of" in fails(
        cli(database_url, "log", tenant.key, "--outcome", "x", "--json"), "invalid"
    )
    assert "No workspace" in fails(cli(database_url, "log", f"nope-{tenant.key}", "--json"), "not_found")

    await _add(db, tenant.id, 2, timedelta(days=500))
    pruned = ok(cli(database_url, "log-prune", "--days", "400", "--json"))
    assert pruned["retention_days"] == 400 and pruned["deleted"] >= 2
    assert await _count(db, tenant.id) == 3
