"""A database connection that PostgreSQL ends (failover, restart, idle timeout, ``pg_terminate_backend``)
costs no request: reads run again on a fresh connection, writes run again when nothing can have been
committed, and anything else answers 503 with Retry-After, never 500.

The PostgreSQL scenarios run a real server (uvicorn) and end its connections from an admin connection
while requests are under way; SQLite has no connections to lose, and its half checks that a lock
timeout answers 503 on every surface.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from provisio.db import engine as db_engine
from provisio.db.engine import Database, async_url
from provisio.db.models import Member
from provisio.scim.errors import ERROR_SCHEMA
from tests.conftest import Tenant, make_tenant
from tests.domain.helpers import okta_user, unique_domain
from tests.live_server import LiveServer, live_server
from tests.oauth.helpers import csrf_token

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
LOAD_SECONDS = 3.0
KILL_EVERY_SECONDS = 0.5
WORKERS = 6


def _postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server connections to lose")


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[LiveServer]:
    _postgres_only(database_url)
    with live_server(database_url) as live:
        yield live


@pytest.fixture
async def admin(database_url: str, db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection of its own that ends every other connection to the test database."""
    _postgres_only(database_url)
    engine = create_async_engine(async_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()
        # This process's own pool lost its connections too: later tests start from fresh ones.
        await db.dispose()


async def _terminate(admin: AsyncConnection) -> int:
    return int((await admin.execute(text(TERMINATE))).scalar_one())


async def _kill_repeatedly(admin: AsyncConnection, until: float) -> int:
    killed = 0
    while time.monotonic() < until - KILL_EVERY_SECONDS:
        await asyncio.sleep(KILL_EVERY_SECONDS)
        killed += await _terminate(admin)
    return killed


def _headers(tenant: Tenant) -> dict[str, str]:
    return {**tenant.headers, "Content-Type": "application/scim+json"}


def _assert_unavailable(response: httpx.Response) -> None:
    """503, as a SCIM Error, with Retry-After."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert ERROR_SCHEMA in response.json()["schemas"]


async def _pooled(http: httpx.AsyncClient, tenant: Tenant, url: str) -> None:
    """Concurrent requests, so that the server's pool holds several connections."""
    responses = await asyncio.gather(*(http.get(url, headers=tenant.headers) for _ in range(WORKERS * 2)))
    assert {r.status_code for r in responses} == {200}


async def test_reads_survive_terminated_connections(
    server: LiveServer, db: Database, admin: AsyncConnection
) -> None:
    tenant = await make_tenant(db)
    domain = unique_domain()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        ids = []
        for i in range(WORKERS):
            created = await http.post(
                f"{tenant.base}/Users", json=okta_user(f"r{i}@{domain}"), headers=_headers(tenant)
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "count": 5}
        until = time.monotonic() + LOAD_SECONDS

        async def reader(i: int) -> Counter[int]:
            seen: Counter[int] = Counter()
            while time.monotonic() < until:
                for response in (
                    await http.get(f"{tenant.base}/Users/{ids[i]}", headers=tenant.headers),
                    await http.get(
                        f"{tenant.base}/Users",
                        params={"filter": f'userName eq "r{i}@{domain}"'},
                        headers=tenant.headers,
                    ),
                    await http.post(f"{tenant.base}/Users/.search", json=search, headers=_headers(tenant)),
                ):
                    seen[response.status_code] += 1
                    assert response.status_code == 200, response.text
            return seen

        killer = asyncio.create_task(_kill_repeatedly(admin, until))
        counts = await asyncio.gather(*(reader(i) for i in range(WORKERS)))
        killed = await killer
    assert killed >= WORKERS  # the readers' connections, ended several times over
    assert sum(counts, Counter()) == {200: sum(sum(c.values()) for c in counts)}


async def test_writes_apply_once_or_answer_503(
    server: LiveServer, db: Database, admin: AsyncConnection
) -> None:
    """POST, PUT and PATCH while connections are ended: each is applied exactly once, or answers 503
    (with Retry-After) when its commit's outcome is unknown; never 500, never twice."""
    tenant = await make_tenant(db)
    domain = unique_domain()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

        async def create(user_name: str) -> httpx.Response:
            return await http.post(
                f"{tenant.base}/Users", json=okta_user(user_name), headers=_headers(tenant)
            )

        patched, replaced = [], []
        for i in range(WORKERS):
            patched.append((await create(f"p{i}@{domain}")).json()["id"])
            replaced.append((await create(f"u{i}@{domain}")).json()["id"])
        until = time.monotonic() + LOAD_SECONDS
        created: dict[str, int] = {}  # userName -> status
        patches: dict[str, dict[str, int]] = {}  # member id -> phone number -> status
        puts: dict[str, Counter[int]] = {}

        async def writer(i: int) -> None:
            patches[patched[i]], puts[replaced[i]] = {}, Counter()
            n = 0
            while time.monotonic() < until:
                n += 1
                user_name = f"c{i}-{n}@{domain}"
                response = await create(user_name)
                created[user_name] = response.status_code
                _check(response, 201)
                phone = f"+1 555 {i:03d} {n:04d}"
                operation = {"op": "add", "path": "phoneNumbers", "value": [{"value": phone, "type": "work"}]}
                response = await http.patch(
                    f"{tenant.base}/Users/{patched[i]}",
                    json={"schemas": [PATCH_OP], "Operations": [operation]},
                    headers=_headers(tenant),
                )
                patches[patched[i]][phone] = response.status_code
                _check(response, 200)
                body = {**okta_user(f"u{i}@{domain}"), "displayName": f"Replaced {n}"}
                response = await http.put(
                    f"{tenant.base}/Users/{replaced[i]}", json=body, headers=_headers(tenant)
                )
                puts[replaced[i]][response.status_code] += 1
                _check(response, 200)

        killer = asyncio.create_task(_kill_repeatedly(admin, until))
        await asyncio.gather(*(writer(i) for i in range(WORKERS)))
        assert await killer >= WORKERS
        finals = {
            member_id: (await http.get(f"{tenant.base}/Users/{member_id}", headers=tenant.headers)).json()
            for member_id in patched + replaced
        }
    await db.dispose()  # its connections were ended too
    async with db.reading() as session:
        rows = await session.execute(
            select(Member.user_name, func.count())
            .where(Member.workspace_id == tenant.id, Member.user_name.in_(list(created)))
            .group_by(Member.user_name)
        )
        stored = {user_name: count for user_name, count in rows}
    for user_name, status in created.items():
        # Created once; after a 503 the outcome is unknown, but never twice.
        assert stored.get(user_name, 0) == 1 if status == 201 else stored.get(user_name, 0) <= 1
    for member_id, sent in patches.items():
        phones = {p["value"] for p in finals[member_id].get("phoneNumbers", [])}
        assert {p for p, status in sent.items() if status == 200} <= phones <= set(sent)
        assert _version(finals[member_id]) == 1 + len(phones)  # each applied PATCH: one version
    for member_id, statuses in puts.items():
        assert statuses[200] <= _version(finals[member_id]) - 1 <= statuses[200] + statuses[503]


def _check(response: httpx.Response, success: int) -> None:
    if response.status_code != success:
        _assert_unavailable(response)


def _version(resource: dict[str, Any]) -> int:
    return int(resource["meta"]["version"].removeprefix('W/"').removesuffix('"'))


async def test_idle_connections_ended_cost_nothing(
    server: LiveServer, db: Database, admin: AsyncConnection
) -> None:
    """Connections ended while idle in the pool: the next requests succeed, without a stall."""
    tenant = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        created = await http.post(
            f"{tenant.base}/Users", json=okta_user(f"idle@{unique_domain()}"), headers=_headers(tenant)
        )
        url = f"{tenant.base}/Users/{created.json()['id']}"
        for _ in range(3):
            await _pooled(http, tenant, url)
            assert await _terminate(admin) >= 1
            await asyncio.sleep(0.3)
            for _ in range(3):
                start = time.monotonic()
                response = await http.get(url, headers=tenant.headers)
                elapsed = time.monotonic() - start
                assert response.status_code == 200, response.text
                assert elapsed < 1.0
            patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}
            await _pooled(http, tenant, url)
            assert await _terminate(admin) >= 1
            await asyncio.sleep(0.3)
            response = await http.patch(url, json=patch, headers=_headers(tenant))
            assert response.status_code == 200, response.text


async def test_console_and_oauth_survive_ended_connections(
    server: LiveServer, db: Database, admin: AsyncConnection
) -> None:
    """The FastAPI side: a console page that reads the session, and the token endpoint (a transaction),
    answer as usual on the first use of a pool whose connections were ended."""
    # An unknown session cookie: the page reads the database to find it is no session.
    cookies = {"provisio_session": "unknown"}
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies, timeout=30) as http:
        for _ in range(3):
            await asyncio.gather(*(http.get("/console/") for _ in range(4)))
            assert await _terminate(admin) >= 1
            await asyncio.sleep(0.3)
            page = await http.get("/console/")
            assert page.status_code == 303, page.text  # not signed in: to the sign-in page
            token = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
            )
            assert token.status_code in (400, 401), token.text
            assert token.json()["error"] == "invalid_client"


# --- a COMMIT lost in flight ------------------------------------------------------------------------

# A deferred trigger holds the COMMIT of a marked user's change (or, for the one-statement PATCH, the
# statement's own commit) long enough for the test to end the connection while it runs. The sequence
# counts attempts: it is not transactional, so a rolled-back attempt still counts.
SLOW_COMMIT = [
    "CREATE SEQUENCE commit_attempts",
    """CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM nextval('commit_attempts');
      PERFORM pg_sleep(10);
      RETURN NULL;
    END $$""",
    """CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON provisioning_events
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
      WHEN (NEW.user_name LIKE 'commitfail-%' AND NEW.outcome = 'success')
      EXECUTE FUNCTION slow_commit()""",
]
DROP_SLOW_COMMIT = [
    "DROP TRIGGER IF EXISTS slow_commit ON provisioning_events",
    "DROP FUNCTION IF EXISTS slow_commit()",
    "DROP SEQUENCE IF EXISTS commit_attempts",
]
IN_SLOW_COMMIT = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'"
)


@pytest.fixture
async def slow_commit(admin: AsyncConnection) -> AsyncIterator[None]:
    for statement in DROP_SLOW_COMMIT:
        await admin.execute(text(statement))
    try:
        yield
    finally:
        for statement in DROP_SLOW_COMMIT:
            await admin.execute(text(statement))


async def _end_the_commit(admin: AsyncConnection) -> None:
    """Wait until a backend sleeps in the trigger, then end it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = (await admin.execute(text(IN_SLOW_COMMIT))).scalars().all()
        if pids:
            for pid in pids:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no COMMIT reached the trigger")


@pytest.mark.parametrize("write", ["create", "patch"])
async def test_a_lost_commit_is_not_retried(
    server: LiveServer, db: Database, admin: AsyncConnection, slow_commit: None, write: str
) -> None:
    """A connection lost during COMMIT (create: the transaction's COMMIT; PATCH: its one autocommitted
    statement) leaves the outcome unknown: 503 with Retry-After, and the write is not sent again."""
    tenant = await make_tenant(db)
    user_name = f"commitfail-{uuid.uuid4().hex[:8]}@{unique_domain()}"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        url = f"{tenant.base}/Users"
        if write == "patch":
            created = await http.post(url, json=okta_user(user_name), headers=_headers(tenant))
            assert created.status_code == 201, created.text
            url = f"{url}/{created.json()['id']}"
        for statement in SLOW_COMMIT:
            await admin.execute(text(statement))
        if write == "create":
            request = http.post(url, json=okta_user(user_name), headers=_headers(tenant))
        else:
            operation = {"op": "replace", "path": "title", "value": "Lost"}
            request = http.patch(
                url, json={"schemas": [PATCH_OP], "Operations": [operation]}, headers=_headers(tenant)
            )
        response, _ = await asyncio.gather(request, _end_the_commit(admin))
        _assert_unavailable(response)
        attempts = (await admin.execute(text("SELECT last_value FROM commit_attempts"))).scalar_one()
        assert attempts == 1  # not run again
        for statement in DROP_SLOW_COMMIT:
            await admin.execute(text(statement))
        # The ended COMMIT was rolled back: nothing was written.
        listed = await http.get(
            f"{tenant.base}/Users", params={"filter": f'userName eq "{user_name}"'}, headers=tenant.headers
        )
        resources = listed.json()["Resources"]
    if write == "create":
        assert resources == []
    else:
        assert resources[0].get("title") is None and _version(resources[0]) == 1


# --- SQLite: a lock held past the wait ----------------------------------------------------------------


@pytest.fixture
def short_lock_wait(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    monkeypatch.setattr(db_engine, "SQLITE_WRITE_LOCK_WAIT_S", 0.3)


async def test_sqlite_lock_timeout_answers_503(
    short_lock_wait: None, database_url: str, db: Database, client: httpx.AsyncClient
) -> None:
    """Another process holds SQLite's write lock past the wait: SCIM, the console and OAuth answer 503
    with Retry-After in their own forms."""
    import sqlite3

    tenant = await make_tenant(db)
    login = await client.get("/console/login")
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        scim = await client.post(
            f"{tenant.base}/Users", json=okta_user(f"locked@{unique_domain()}"), headers=_headers(tenant)
        )
        console = await client.post(
            "/console/login",
            data={"csrf_token": csrf_token(login.text), "email": "a@example.com", "password": "x"},
        )
        token = await client.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _assert_unavailable(scim)
    assert console.status_code == 503 and console.headers["retry-after"]
    assert "Temporarily unavailable" in console.text and console.headers["content-type"].startswith(
        "text/html"
    )
    assert token.status_code == 503 and token.headers["retry-after"]
    assert token.json()["error"] == "temporarily_unavailable"
