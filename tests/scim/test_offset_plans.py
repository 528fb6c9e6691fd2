"""What an offset page costs, read from the database's own plan of the statement the server issues.

A page skips the rows before it once: no step of the plan that skips rows (a LIMIT/OFFSET, a sort, a
scan of ``members``) runs more than once, with the statistics a freshly filled table has (none: the
workspace looks like a row or two, the estimate that once led PostgreSQL to run the skipping subquery
again for every member) and after ANALYZE. The members are varied the way a fuzzing client makes them
(``test_offset_pages.varied_user``), where the wrong plan was first seen."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database, async_url
from provisio.db.migrate import upgrade
from provisio.domain import domains as domain_service
from provisio.domain import members
from provisio.domain import scim_settings as scim_settings_service
from provisio.domain import tokens as token_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from provisio.domain.members import BUCKET_SKIP_FROM
from tests.conftest import BASE_URL, POSTGRES_ENV, Tenant
from tests.scim.test_offset_pages import seed_varied

SIZE = 300
PG_URL = os.environ.get(POSTGRES_ENV)


@dataclass
class Fresh:
    db: Database
    client: httpx.AsyncClient
    app: Any
    tenant: Tenant


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=f"{POSTGRES_ENV} is not set")),
    ],
)
async def fresh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fresh]:
    """A database of its own, migrated and filled through the SCIM API, never analyzed (PostgreSQL's
    autovacuum is off for ``members`` until the tests run ANALYZE themselves)."""
    loop = asyncio.get_running_loop()
    name = f"provisio_plans_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'provisio.db'}"
        await loop.run_in_executor(None, upgrade, url)
    else:
        assert PG_URL
        admin = create_async_engine(async_url(PG_URL), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        await loop.run_in_executor(None, upgrade, url)
    db = Database.from_url(url)
    try:
        if request.param == "postgresql":
            async with db.write_engine.connect() as conn:
                await conn.exec_driver_sql("ALTER TABLE members SET (autovacuum_enabled = false)")
                await conn.commit()
        async with db.writing() as session:
            ws = await workspace_service.create_workspace(session, f"Plans {name}", seats=100_000)
            await domain_service.add_domain(session, ws, f"{ws.key}.test", operator_verified=True)
            # Possible once a domain is verified.
            await scim_settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
            ws.allow_other_domains = True
            token = (await token_service.create_token(session, ws, "test")).token
        tenant = Tenant(key=ws.key, id=ws.id, token=token, base=f"/scim/v2/{ws.key}")
        settings = Settings(
            database_url=url, base_url=BASE_URL, secret_key="k", log_level="WARNING", scim_max_results=SIZE
        )
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
        ):
            await seed_varied(client, tenant, SIZE, name)
            yield Fresh(db, client, app, tenant)
    finally:
        await db.dispose()
        if request.param == "postgresql":
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.dispose()


# Deep pages, filtered (the filter reads each row's document) and sorted, and unfiltered ones, which
# are read from the nearer end, by buckets at larger offsets.
PAGES = [
    {"filter": 'emails.type eq "work"', "startIndex": 60},
    {"filter": 'not (emails.type eq "work")', "startIndex": 150},
    {"filter": 'emails.type eq "work"', "sortBy": "userName", "startIndex": 60},
    {"filter": "active eq false", "sortBy": "title", "sortOrder": "descending", "startIndex": 40},
    {"sortBy": "name.familyName", "startIndex": 100},
    {"startIndex": 120},
    {"startIndex": 100, "buckets": True},
]

# Plan steps that skip rows: one run each is the whole cost of the rows before the page.
_SKIPPING = ("Limit", "Sort", "Incremental Sort", "Materialize", "Hash", "Unique", "Aggregate")
PAGE = 10


def _reruns(node: dict[str, Any]) -> list[str]:
    """The steps of a PostgreSQL plan (EXPLAIN ANALYZE, JSON) that ran more often than they may: a step
    that skips rows more than once, a read of ``members`` more than once per row of the page."""
    loops = node.get("Actual Loops", 1)
    found = []
    if (node["Node Type"] in _SKIPPING and loops > 1) or (
        node.get("Relation Name") == "members" and loops > PAGE
    ):
        found.append(f"{node['Node Type']} {node.get('Relation Name', '')} x{loops}")
    for child in node.get("Plans", []):
        found.extend(_reruns(child))
    return found


@contextmanager
def _statements(app: Any) -> Iterator[list[tuple[str, Any]]]:
    """The SQL the app's reading engine runs meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []
    engine = app.state.db.read_engine.sync_engine

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


async def _page_plan(fresh: Fresh, params: dict[str, Any]) -> tuple[list[str], str]:
    """Read the page; the ids on it, and the plan of the statement that read it."""
    with _statements(fresh.app) as seen:
        r = await fresh.client.get(f"{fresh.tenant.base}/Users", params=params, headers=fresh.tenant.headers)
    assert r.status_code == 200, r.text
    page = [u["id"] for u in r.json()["Resources"]]
    statement, parameters = next((s, p) for s, p in seen if "FROM members" in s and "OFFSET" in s)
    assert ("member_buckets" in statement) == (members.BUCKET_SKIP_FROM == 1), statement
    explain = "EXPLAIN (ANALYZE, FORMAT JSON) " if fresh.db.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    async with fresh.db.read_engine.connect() as conn:
        # run_sync: the inline SQLite driver runs statements only inside SQLAlchemy's greenlet.
        rows = await conn.run_sync(lambda c: c.exec_driver_sql(explain + statement, tuple(parameters)).all())
    if fresh.db.dialect == "postgresql":
        plan = rows[0][0]
        return page, json.dumps(plan if isinstance(plan, list) else json.loads(plan))
    return page, "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize("analyzed", [False, True], ids=["no-statistics", "analyzed"])
async def test_an_offset_page_skips_its_rows_once(
    fresh: Fresh, analyzed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if analyzed:
        async with fresh.db.write_engine.connect() as conn:
            await conn.run_sync(lambda c: c.exec_driver_sql("ANALYZE"))
            await conn.commit()
    for entry in PAGES:
        params = {k: v for k, v in entry.items() if k != "buckets"}
        monkeypatch.setattr(members, "BUCKET_SKIP_FROM", 1 if entry.get("buckets") else BUCKET_SKIP_FROM)
        everything = {k: v for k, v in params.items() if k != "startIndex"} | {"count": SIZE}
        r = await fresh.client.get(
            f"{fresh.tenant.base}/Users", params=everything, headers=fresh.tenant.headers
        )
        # The first page of the whole list is read by one plain statement; the page must be its slice.
        whole = [u["id"] for u in r.json()["Resources"]]
        assert len(whole) == r.json()["totalResults"]
        start = int(params["startIndex"])
        assert len(whole) >= start + PAGE, params
        page, plan = await _page_plan(fresh, {**params, "count": PAGE})
        assert page == whole[start - 1 : start - 1 + PAGE], params
        if fresh.db.dialect == "postgresql":
            assert _reruns(json.loads(plan)[0]["Plan"]) == [], (params, plan)
        else:
            # SQLite: the subquery of the page's ids runs once into a list, not once per row.
            assert "LIST SUBQUERY" in plan and "CORRELATED LIST" not in plan, (params, plan)
