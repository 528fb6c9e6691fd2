"""Shared fixtures: every database test runs on SQLite and, when configured, on PostgreSQL.

Set ``PROVISIO_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``) to add the
PostgreSQL run: a uniquely named database is created for the session and dropped afterwards. Under
CI (``CI=true``) a missing PostgreSQL fails the run instead of being skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import hypothesis
import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database, async_url
from provisio.db.migrate import upgrade
from provisio.db.models import Member, SeatLedgerEntry
from provisio.domain import domains as domain_service
from provisio.domain import scim_settings as scim_settings_service
from provisio.domain import tokens as token_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR

POSTGRES_ENV = "PROVISIO_TEST_POSTGRES_URL"

# Under CI every property test runs the same examples each time, so a red build is the change's doing,
# not a new example found by chance; runs elsewhere keep exploring (and remember what they found).
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true":
    hypothesis.settings.load_profile("ci")
BASE_URL = "http://provisio.test"


def _backends() -> list[str]:
    backends = ["sqlite"]
    if os.environ.get(POSTGRES_ENV):
        backends.append("postgresql")
    elif os.environ.get("CI"):
        raise pytest.UsageError(f"CI runs every database test on PostgreSQL too: set {POSTGRES_ENV}.")
    return backends


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("provisio")


@pytest.fixture(scope="session", params=_backends())
async def database_url(request: pytest.FixtureRequest, tmp_root: Path) -> AsyncIterator[str]:
    """A migrated database for the whole session, one per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_root / 'provisio.db'}"
        await _run_blocking(upgrade, url)
        yield url
        return
    admin_url = os.environ[POSTGRES_ENV]
    name = f"provisio_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        await _run_blocking(upgrade, url)
        yield url
    finally:
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _run_blocking(fn: object, *args: object) -> None:
    import asyncio

    # Alembic's env runs its own event loop, which cannot nest inside pytest-asyncio's.
    await asyncio.get_running_loop().run_in_executor(None, fn, *args)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        base_url=BASE_URL,
        secret_key="test-secret",
        log_json=True,
        log_level="WARNING",
        scim_max_results=100,
        # On, so every request passes through the limiter, but far above what a test sends: the limit
        # itself is tested in tests/ratelimit with limits of its own.
        scim_rate_limit_per_second=100_000,
        scim_rate_limit_burst=100_000,
        # The shared app delivers no mail: tests/notify runs workers of its own on its own SMTP server.
        outbox_worker=False,
    )


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


@dataclass
class Tenant:
    key: str
    id: str
    token: str
    base: str  # the Tenant URL path, relative to the client's base URL
    name: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


GENEROUS_SEATS = 100_000

# People are global (one workspace per person) but tests share one database: the members of
# tenants made by earlier tests are deactivated before a later test makes its first tenant, so fixed
# addresses such as ada@example.com can be reused from test to test.
_test_generation = 0
_made: list[tuple[int, Database, str]] = []


@pytest.fixture(autouse=True)
def _next_test_generation() -> None:
    global _test_generation
    _test_generation += 1


async def _release_earlier_tenants() -> None:
    earlier = [(db, ws_id) for gen, db, ws_id in _made if gen != _test_generation]
    _made[:] = [entry for entry in _made if entry[0] == _test_generation]
    for db, ws_id in earlier:
        async with db.writing() as session:
            await session.execute(
                update(Member)
                .where(Member.workspace_id == ws_id, Member.active.is_(True))
                .values(active=False)
            )


async def make_tenant(
    db: Database,
    name: str = "Acme",
    seats: int = GENEROUS_SEATS,
    *,
    domains: tuple[str, ...] | None = None,
    allow_other_domains: bool = True,
    auto_charge: bool = False,
    max_seats: int | None = None,
    exact_name: bool = False,
) -> Tenant:
    """A workspace with a bearer token. By default: generous seats, one operator-verified domain of its
    own (``<key>.test``) and other domains allowed, so any e-mail can be provisioned, and SCIM on.
    ``domains=()``: no verified domain, so SCIM stays off (the token is refused)."""
    await _release_earlier_tenants()
    async with db.writing() as session:
        full_name = name if exact_name else f"{name} {uuid.uuid4().hex[:6]}"
        ws = await workspace_service.create_workspace(session, full_name, seats=seats)
        for domain in domains if domains is not None else (f"{ws.key}.test",):
            await domain_service.add_domain(session, ws, domain, operator_verified=True)
        if domains != ():  # SCIM can be on only with a verified domain: without one it stays off
            await scim_settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
        ws.allow_other_domains = allow_other_domains
        ws.license_auto_charge = auto_charge
        ws.license_max_seats = max_seats
        issued = await token_service.create_token(session, ws, "test")
    _made.append((_test_generation, db, ws.id))
    return Tenant(key=ws.key, id=ws.id, token=issued.token, base=f"/scim/v2/{ws.key}", name=ws.name)


def after_initial_purchase(oldest_first: list[SeatLedgerEntry]) -> list[SeatLedgerEntry]:
    """A workspace's ledger after the entry for the seats it was created with (if it had any)."""
    if oldest_first and oldest_first[0].reason.startswith("initial purchase"):
        return oldest_first[1:]
    return oldest_first


@pytest.fixture
async def tenant(db: Database) -> Tenant:
    """A fresh workspace with a bearer token: tests are isolated by tenant, not by database."""
    return await make_tenant(db)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parent.parent
