"""/healthz answers while the process runs; /readyz says whether it can serve, check by check."""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.migrate import alembic_config, head_revision, upgrade
from provisio.health import MigrationsCurrent, outbox_check
from provisio.notify.worker import outbox_problem
from tests.ops.apps import outbox_worker, running_on, scratch_database, served

TIMEOUT_S = 1.0


async def test_healthz_answers_get_and_head(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    head = await client.head("/healthz")
    assert head.status_code == 200 and head.content == b""


@pytest.fixture
async def worker_alive(db: Database, settings: Settings, tmp_path: Path) -> AsyncIterator[None]:
    async with outbox_worker(db, settings, tmp_path):
        yield


@pytest.mark.usefixtures("worker_alive")
async def test_ready_when_database_schema_and_outbox_are_good(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"] == {
        "ok": True,
        "revision": head_revision("sqlite://"),
        "duration_ms": body["checks"]["migrations"]["duration_ms"],
    }
    assert body["checks"]["outbox"]["ok"] is True
    assert body["checks"]["outbox"]["last_heartbeat_age_seconds"] < 30
    assert response.headers["cache-control"] == "no-store"
    head = await client.head("/readyz")
    assert head.status_code == 200 and head.content == b""


def _took(check: dict[str, Any]) -> dict[str, Any]:
    return {"duration_ms": check["duration_ms"]}


def _settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "secret_key": "test-secret",
        "log_level": "WARNING",
        "readyz_timeout_seconds": TIMEOUT_S,
    }
    return Settings(**(values | overrides))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _not_ready_in_time(url: str) -> dict[str, Any]:
    async with running_on(_settings(url)) as (_app, client):
        start = time.monotonic()
        response = await client.get("/readyz")
        took = time.monotonic() - start
    assert response.status_code == 503, response.text
    assert took < TIMEOUT_S + 1.5, f"/readyz took {took:.1f} s"
    body = response.json()
    assert body["status"] == "unavailable"
    return dict(body["checks"])


async def test_not_ready_when_postgresql_refuses_connections() -> None:
    checks = await _not_ready_in_time(f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres")
    assert checks["database"]["ok"] is False
    assert checks["migrations"]["ok"] is False
    # The kind of failure, not its message (which names the host and port).
    assert "127.0.0.1" not in str(checks)


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word: a database that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_not_ready_within_the_timeout_when_postgresql_does_not_answer(silent_server: int) -> None:
    checks = await _not_ready_in_time(f"postgresql://postgres@127.0.0.1:{silent_server}/postgres")
    assert checks["database"]["ok"] is False
    assert checks["database"]["error"] == f"no answer within {TIMEOUT_S:g} s"


async def test_not_ready_when_the_sqlite_file_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite database file\n" * 200)
    checks = await _not_ready_in_time(f"sqlite:///{path}")
    assert checks["database"]["ok"] is False


async def test_not_ready_while_migrations_are_behind(database_url: str, tmp_path: Path) -> None:
    head = head_revision(database_url)
    async with (
        scratch_database(database_url, tmp_path, "0009") as url,
        running_on(_settings(url)) as (_app, client),
    ):
        behind = await client.get("/readyz")
        assert behind.status_code == 503, behind.text
        checks = behind.json()["checks"]
        assert checks["database"]["ok"] is True
        assert checks["migrations"]["ok"] is False
        assert (checks["migrations"]["revision"], checks["migrations"]["expected"]) == ("0009", head)

        # Not current is not remembered: once upgraded, the next probe says so (and the outbox, a
        # table of a later migration, can now be asked: no worker has run on this database yet).
        await asyncio.get_running_loop().run_in_executor(None, upgrade, url)
        current = (await client.get("/readyz")).json()["checks"]
        assert current["migrations"] == {"ok": True, "revision": head, **_took(current["migrations"])}
        assert current["outbox"]["error"].startswith("no outbox worker has ever run")


async def test_a_current_schema_is_remembered_for_a_while(database_url: str, tmp_path: Path) -> None:
    head = head_revision(database_url)
    async with scratch_database(database_url, tmp_path, "head") as url:
        db = Database.from_url(url)
        try:
            cached, uncached = MigrationsCurrent(head, cache_seconds=60), MigrationsCurrent(head, 0)
            assert (await cached(db)).ok and (await uncached(db)).ok
            downgrade = command.downgrade
            await asyncio.get_running_loop().run_in_executor(None, downgrade, alembic_config(url), "0009")
            assert (await cached(db)).ok  # without a query: the probe stays cheap
            assert not (await uncached(db)).ok
        finally:
            await db.dispose()


class FakeOutbox:
    """Stands in for the notification worker's report (depth, oldest due age, heartbeat age)."""

    def __init__(self) -> None:
        self.report: dict[str, Any] = {}
        self.asked_with: list[Database] = []
        self.fail: BaseException | None = None
        self.hang = False

    async def __call__(self, db: Database) -> dict[str, Any]:
        self.asked_with.append(db)
        if self.fail is not None:
            raise self.fail
        if self.hang:
            await asyncio.sleep(60)
        return self.report


@pytest.fixture(scope="module")
async def outbox_app(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient, FakeOutbox]]:
    fake = FakeOutbox()
    async with served(settings.model_copy(update={"readyz_timeout_seconds": TIMEOUT_S})) as (app, client):
        rule = functools.partial(outbox_problem, settings=settings)
        app.state.readiness.register("outbox", outbox_check(fake, rule), replace=True)
        yield app, client, fake


@pytest.mark.parametrize(
    ("report", "ready", "error"),
    [
        ({"depth": 3, "oldest_due_age_seconds": 12.0, "last_heartbeat_age_seconds": 4.0}, True, None),
        ({"depth": 0, "oldest_due_age_seconds": None, "last_heartbeat_age_seconds": 1.0}, True, None),
        (
            {"depth": 0, "oldest_due_age_seconds": None, "last_heartbeat_age_seconds": None},
            False,
            "no outbox worker has ever run",
        ),
        (
            {"depth": 5, "oldest_due_age_seconds": 30.0, "last_heartbeat_age_seconds": 900.0},
            False,
            "no outbox worker is alive: the last heartbeat is 900 s old",
        ),
        (
            {"depth": 4000, "oldest_due_age_seconds": 7200.0, "last_heartbeat_age_seconds": 2.0},
            False,
            "the outbox is stuck: a due notification has waited 7200 s",
        ),
    ],
    ids=["ok", "empty", "never-ran", "dead", "stuck"],
)
async def test_outbox_check(
    outbox_app: tuple[Any, httpx.AsyncClient, FakeOutbox],
    report: dict[str, Any],
    ready: bool,
    error: str | None,
) -> None:
    app, client, fake = outbox_app
    fake.report, fake.fail, fake.hang = report, None, False
    response = await client.get("/readyz")
    assert response.status_code == (200 if ready else 503), response.text
    outbox = response.json()["checks"]["outbox"]
    assert outbox["ok"] is ready
    assert (outbox.get("error") or "").startswith(error or "") and ("error" in outbox) is (error is not None)
    assert outbox["depth"] == report["depth"]
    assert outbox["last_heartbeat_age_seconds"] == report["last_heartbeat_age_seconds"]
    assert fake.asked_with[-1] is app.state.db
    # The other checks are still run and reported.
    assert response.json()["checks"]["database"]["ok"] is True


async def test_outbox_provider_that_fails_or_hangs(
    outbox_app: tuple[Any, httpx.AsyncClient, FakeOutbox],
) -> None:
    _app, client, fake = outbox_app
    fake.fail, fake.hang = RuntimeError("relation outbox does not exist"), False
    failed = await client.get("/readyz")
    assert failed.status_code == 503
    assert failed.json()["checks"]["outbox"]["error"] == "RuntimeError"

    fake.fail, fake.hang = None, True
    start = time.monotonic()
    hung = await client.get("/readyz")
    assert hung.status_code == 503 and time.monotonic() - start < TIMEOUT_S + 1.5
    assert hung.json()["checks"]["outbox"]["error"] == f"no answer within {TIMEOUT_S:g} s"


async def test_with_readyz_outbox_off_the_outbox_is_reported_but_never_makes_readyz_fail(
    settings: Settings,
) -> None:
    fake = FakeOutbox()
    fake.report = {"depth": 5, "oldest_due_age_seconds": 7200.0, "last_heartbeat_age_seconds": 900.0}
    for gating in (True, False):
        changed = settings.model_copy(update={"readyz_timeout_seconds": TIMEOUT_S, "readyz_outbox": gating})
        async with served(changed) as (app, client):
            rule = functools.partial(outbox_problem, settings=changed)
            # The app's own check, on a worker reported dead: only the provider is a stand-in.
            app.state.readiness.checks["outbox"] = outbox_check(fake, rule)
            response = await client.get("/readyz")
            outbox = response.json()["checks"]["outbox"]
            assert outbox["ok"] is False and outbox["error"].startswith("no outbox worker is alive")
            assert response.status_code == (503 if gating else 200), response.text
            assert response.json()["status"] == ("unavailable" if gating else "ok")
            assert outbox.get("advisory", False) is not gating
            # The other checks still decide.
            app.state.readiness.checks["database"] = _failing
            assert (await client.get("/readyz")).status_code == 503


async def _failing(db: Database) -> Any:
    raise RuntimeError("down")
