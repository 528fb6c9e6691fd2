"""The per-workspace rate limit of the SCIM API, end to end on a real server with a low limit: 429 with
an integer Retry-After and a SCIM Error once a workspace's burst is spent, other workspaces unaffected,
requests without the workspace's credentials spending nothing of it, a seat refusal still 403.

The server keeps its buckets where production would: in the database on PostgreSQL, in memory on
SQLite, and in Redis when ``PROVISIO_REDIS_URL`` is set (run beside SQLite)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent
from provisio.scim.errors import ERROR_SCHEMA
from tests.conftest import Tenant, make_tenant
from tests.domain.helpers import okta_user, scim_error, unique_domain
from tests.live_server import LiveServer, live_server
from tests.ratelimit.conftest import redis_url

PER_SECOND = 2
BURST = 6
LIMIT = {"PROVISIO_SCIM_RATE_LIMIT_PER_SECOND": str(PER_SECOND), "PROVISIO_SCIM_RATE_LIMIT_BURST": str(BURST)}


@pytest.fixture(scope="module", params=["database", *(["redis"] if redis_url() else [])])
def server(request: pytest.FixtureRequest, database_url: str) -> Iterator[LiveServer]:
    env = dict(LIMIT)
    if request.param == "redis":
        if not database_url.startswith("sqlite"):
            pytest.skip("the Redis store runs beside the SQLite session")
        env["PROVISIO_REDIS_URL"] = str(redis_url())
    with live_server(database_url, env=env) as live:
        yield live


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


async def _burst(http: httpx.AsyncClient, tenant: Tenant, n: int) -> tuple[list[httpx.Response], float]:
    began = time.monotonic()
    responses = [
        await http.get(f"{tenant.base}/ServiceProviderConfig", headers=tenant.headers) for _ in range(n)
    ]
    return responses, time.monotonic() - began


def _admitted_at_most(elapsed: float) -> int:
    return BURST + math.ceil(elapsed * PER_SECOND) + 1


async def test_a_spent_burst_is_429_with_retry_after_and_other_workspaces_go_on(
    http: httpx.AsyncClient, db: Database
) -> None:
    noisy, quiet = await make_tenant(db, "Noisy"), await make_tenant(db, "Quiet")
    responses, elapsed = await _burst(http, noisy, 25)
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == len(responses)
    assert BURST <= len(ok) <= _admitted_at_most(elapsed)
    assert [r.status_code for r in responses[:BURST]] == [200] * BURST
    for r in refused:
        assert r.headers["Retry-After"].isdigit() and int(r.headers["Retry-After"]) >= 1
        assert r.headers["content-type"].startswith("application/scim+json")
        body = r.json()
        assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == "429"
        assert body["detail"] == (
            f"Too many requests: this workspace may send {PER_SECOND} SCIM requests per second (bursts of "
            f"{BURST}), across all its clients. Retry after 1 s (the Retry-After header)."
        )
    # The other workspace of the same server still has its whole burst.
    others, _ = await _burst(http, quiet, BURST)
    assert [r.status_code for r in others] == [200] * BURST


async def test_after_retry_after_the_workspace_is_served_again(http: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_tenant(db)
    responses, _ = await _burst(http, tenant, BURST + 3)
    refused = next(r for r in responses if r.status_code == 429)
    await asyncio.sleep(int(refused.headers["Retry-After"]))
    r = await http.get(f"{tenant.base}/ServiceProviderConfig", headers=tenant.headers)
    assert r.status_code == 200


async def test_requests_without_its_credentials_spend_nothing_of_a_workspace_budget(
    http: httpx.AsyncClient, db: Database
) -> None:
    victim, other = await make_tenant(db, "Victim"), await make_tenant(db, "Other")
    url = f"{victim.base}/Users"
    floods = [
        {},
        {"Authorization": "Bearer not-a-token"},
        other.headers,  # a real credential, of another workspace
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ]
    for headers in floods:
        for _ in range(BURST * 2):
            assert (await http.get(url, headers=headers)).status_code == 401
    responses, _ = await _burst(http, victim, BURST)
    assert [r.status_code for r in responses] == [200] * BURST


async def test_refused_requests_are_counted_not_listed(http: httpx.AsyncClient, db: Database) -> None:
    """Failed writes that were admitted are in the provisioning log one by one; refused ones are counted
    on one row per minute (two if the burst straddles a minute), so a flood of refusals cannot grow it."""
    tenant = await make_tenant(db)
    statuses = [
        (await http.delete(f"{tenant.base}/Users/no-such-user", headers=tenant.headers)).status_code
        for _ in range(BURST + 10)
    ]
    assert set(statuses) == {404, 429}
    async with db.reading() as session:
        rows = (
            await session.execute(
                select(ProvisioningEvent.status, ProvisioningEvent.repeats).where(
                    ProvisioningEvent.workspace_id == tenant.id
                )
            )
        ).all()
    assert [r for r in rows if r.status == 404] == [(404, 1)] * statuses.count(404)
    refused = [r.repeats for r in rows if r.status == 429]
    assert 1 <= len(refused) <= 2 and sum(refused) == statuses.count(429)


async def test_a_seat_limit_is_still_403(http: httpx.AsyncClient, db: Database) -> None:
    domain = unique_domain("seats")
    tenant = await make_tenant(db, seats=1, domains=(domain,), allow_other_domains=False)
    url = f"{tenant.base}/Users"
    first = await http.post(url, json=okta_user(f"ada@{domain}"), headers=tenant.headers)
    assert first.status_code == 201, first.text
    second = await http.post(url, json=okta_user(f"bob@{domain}"), headers=tenant.headers)
    assert "No free seat" in scim_error(second, 403)
    assert "Retry-After" not in second.headers


async def test_a_request_is_counted_once_even_when_it_authenticates_twice(
    http: httpx.AsyncClient, db: Database
) -> None:
    """On PostgreSQL a PUT that renames the user leaves the one-statement path for the locking
    transaction, authenticating again: still one request of the budget."""
    domain = unique_domain("twice")
    tenant = await make_tenant(db, domains=(domain,), allow_other_domains=False)
    url = f"{tenant.base}/Users"
    created = await http.post(url, json=okta_user(f"ada@{domain}"), headers=tenant.headers)
    assert created.status_code == 201, created.text
    member = created.json()["id"]
    for i in range(BURST - 1):
        renamed = await http.put(
            f"{url}/{member}", json=okta_user(f"ada{i}@{domain}"), headers=tenant.headers
        )
        assert renamed.status_code == 200, renamed.text
