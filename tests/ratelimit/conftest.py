"""Limiter stores under test: memory, SQL on each database of the session, and Redis.

Set ``PROVISIO_TEST_REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/15``) to add the Redis store; under CI
(``CI=true``) a missing Redis fails the run instead of being skipped. Keys carry a prefix of their own
per run, so a shared Redis is safe.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from provisio.ratelimit import LimiterStore, MemoryStore

REDIS_ENV = "PROVISIO_TEST_REDIS_URL"


def redis_url() -> str | None:
    url = os.environ.get(REDIS_ENV)
    if not url and os.environ.get("CI"):
        raise pytest.UsageError(f"CI runs the rate-limit store tests on Redis too: set {REDIS_ENV}.")
    return url or None


def store_kinds() -> list[str]:
    return ["memory", "sql", *(["redis"] if redis_url() else [])]


@pytest.fixture(params=store_kinds())
async def store(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[LimiterStore]:
    """Each store once per database of the session: the SQL store on that database, the others (which
    do not use it) only beside SQLite."""
    kind = request.param
    if kind != "sql" and not database_url.startswith("sqlite"):
        pytest.skip(f"the {kind} store does not use the database: it runs with the SQLite session")
    made: LimiterStore
    if kind == "memory":
        made = MemoryStore()
    elif kind == "sql":
        from provisio.ratelimit.sql import SqlStore

        made = SqlStore(database_url)
    else:
        from provisio.ratelimit.redis_store import RedisStore

        url = redis_url()
        assert url is not None
        made = RedisStore(url, key_prefix=f"provisio-test:{uuid.uuid4().hex[:8]}:")
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
def key() -> str:
    """A bucket of its own for each test (the SQL store's table lives as long as the session)."""
    return f"test:{uuid.uuid4()}"
