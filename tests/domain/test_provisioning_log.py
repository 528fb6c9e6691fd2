"""Pruning the provisioning log (in batches, by retention, from the server and the CLI) and the CLI's
``provisio log`` JSON contract."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, insert, select, text

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
    # Younger than the test app's own background pruning would take (90 days), older than 10 days.
    await _add(db, tenant.id, 2500, timedelta(days=15))
    await _add(db, tenant.id, 3, timedelta(days=1))
    # A repeated refusal first seen long ago but repeated lately stays.
    await _add(
        db, tenant.id, 1, timedelta(days=15), status=401, outcome="failure", repeats=5, last_at=utcnow()
    )
    statements: list[int] = []
    original = db.writing

    def counted() -> object:
        statements.append(1)
        return original()

    db.writing = counted  # type: ignore[method-assign]
    try:
        deleted = await provisioning_log.prune(db, 10, batch=1000, pause_seconds=0)
    finally:
        del db.writing
    assert deleted >= 2500 and len(statements) >= 3  # at most 1,000 rows per transaction
    assert await _count(db, tenant.id) == 4
    assert await provisioning_log.prune(db, 10, batch=1000, pause_seconds=0) == 0


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

    await _add(db, tenant.id, 2, timedelta(days=15))
    pruned = ok(cli(database_url, "log-prune", "--days", "12", "--json"))
    assert pruned["retention_days"] == 12 and pruned["deleted"] >= 2
    assert await _count(db, tenant.id) == 3


async def test_pruning_picks_its_ids_through_an_index(db: Database) -> None:
    tenant = await make_tenant(db)
    await _add(db, tenant.id, 20, timedelta(days=1))
    query = provisioning_log.prune_candidates(tenant.id, utcnow() - timedelta(days=10))
    async with db.reading() as session:
        dialect = session.get_bind().dialect
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in await session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        else:
            # A table of a few rows is cheaper to scan: ask whether the index serves the query at all.
            async with db.writing() as writing:
                await writing.execute(text("SET LOCAL enable_seqscan = off"))
                plan = " ".join(str(row[0]) for row in await writing.execute(text(f"EXPLAIN {sql}")))
    assert "ix_events_workspace_at" in plan, plan
    assert "SCAN provisioning_events" not in plan and "Seq Scan" not in plan, plan


async def test_pruning_when_nothing_is_old_deletes_nothing(db: Database) -> None:
    tenant = await make_tenant(db)
    await _add(db, tenant.id, 5, timedelta(days=1))
    writes: list[int] = []
    original = db.writing

    def counted() -> object:
        writes.append(1)
        return original()

    db.writing = counted  # type: ignore[method-assign]
    try:
        # Retention of 10,000 days: nothing in the shared test database is that old.
        assert await provisioning_log.prune(db, 10_000, pause_seconds=0) == 0
    finally:
        del db.writing
    assert writes == []  # not one write transaction when there is nothing to delete
    assert await _count(db, tenant.id) == 5
