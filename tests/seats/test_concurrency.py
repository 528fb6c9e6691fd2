"""No race: concurrent creates and reactivations never push a workspace past its seats, and a person
never ends up active in two workspaces. Real concurrency on SQLite and PostgreSQL: many HTTP requests at
once against a live server (its own process and connection pool), and many independent DB sessions.

Each test prints its numbers (attempts, successes, seats); run with ``-s`` to see them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import Workspace
from provisio.domain import members as member_service
from provisio.domain import seats as seat_service
from provisio.domain.errors import DomainError
from provisio.domain.host_events import CLI_ACTOR
from tests.conftest import Tenant, after_initial_purchase, make_tenant
from tests.domain.helpers import okta_user, unique_domain
from tests.live_server import LiveServer, live_server

ATTEMPTS = 40
WORKSPACES = 30


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[LiveServer]:
    with live_server(database_url) as live:
        yield live


def _http(server: LiveServer) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=ATTEMPTS, max_keepalive_connections=ATTEMPTS)
    return httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120)


async def _seat_state(db: Database, tenant: Tenant) -> tuple[int, int, list[int], list[int]]:
    """(used, purchased, ledger deltas, ledger seats_after), the ledger oldest first and without the
    workspace's initial purchase."""
    async with db.reading() as session:
        ws = (await session.execute(select(Workspace).where(Workspace.id == tenant.id))).scalar_one()
        used = await seat_service.used_seats(session, ws.id)
        ledger = after_initial_purchase(list(reversed(await seat_service.ledger(session, ws.id))))
        return used, ws.seats_purchased, [e.delta for e in ledger], [e.seats_after for e in ledger]


def _report(label: str, dialect: str, statuses: Counter[Any], **numbers: int) -> None:
    extra = ", ".join(f"{k}={v}" for k, v in numbers.items())
    print(f"\n[{dialect}] {label}: attempts={sum(statuses.values())} statuses={dict(statuses)} {extra}")


@pytest.mark.parametrize("round_no", range(3))
async def test_concurrent_creates_take_exactly_the_free_seats(
    server: LiveServer, db: Database, round_no: int
) -> None:
    free = 7
    tenant = await make_tenant(db, seats=free)
    domain = unique_domain()
    async with _http(server) as http:
        responses = await asyncio.gather(
            *(
                http.post(f"{tenant.base}/Users", json=okta_user(f"u{i}@{domain}"), headers=tenant.headers)
                for i in range(ATTEMPTS)
            )
        )
    statuses = Counter(r.status_code for r in responses)
    used, purchased, deltas, _ = await _seat_state(db, tenant)
    _report("creates, no auto-charge", db.dialect, statuses, seats=free, used=used, purchased=purchased)
    assert statuses == {201: free, 403: ATTEMPTS - free}
    assert (used, purchased, deltas) == (free, free, [])
    refused = [r.json()["detail"] for r in responses if r.status_code == 403]
    assert all(
        d.startswith(f"No free seat in workspace {tenant.name} ({free} of {free} used)") for d in refused
    )


async def test_concurrent_creates_with_auto_charge_stop_at_the_maximum(
    server: LiveServer, db: Database
) -> None:
    purchased_before, maximum = 5, 12
    tenant = await make_tenant(db, seats=purchased_before, auto_charge=True, max_seats=maximum)
    domain = unique_domain()
    async with _http(server) as http:
        responses = await asyncio.gather(
            *(
                http.post(f"{tenant.base}/Users", json=okta_user(f"u{i}@{domain}"), headers=tenant.headers)
                for i in range(ATTEMPTS)
            )
        )
    statuses = Counter(r.status_code for r in responses)
    used, purchased, deltas, after = await _seat_state(db, tenant)
    _report(
        "creates, auto-charge",
        db.dialect,
        statuses,
        seats_before=purchased_before,
        max_seats=maximum,
        used=used,
        purchased=purchased,
        ledger_entries=len(deltas),
    )
    assert statuses == {201: maximum, 403: ATTEMPTS - maximum}
    assert (used, purchased) == (maximum, maximum)
    # The ledger is consistent: one seat per entry, each entry continuing the previous one.
    assert deltas == [1] * (maximum - purchased_before)
    assert after == list(range(purchased_before + 1, maximum + 1))


async def test_concurrent_reactivations_take_exactly_the_free_seats(server: LiveServer, db: Database) -> None:
    free = 6
    tenant = await make_tenant(db, seats=free)
    domain = unique_domain()
    emails = [f"u{i}@{domain}" for i in range(ATTEMPTS)]
    async with _http(server) as http:
        created = []
        for email in emails:  # dormant members need no seat
            r = await http.post(
                f"{tenant.base}/Users", json=okta_user(email, active=False), headers=tenant.headers
            )
            assert r.status_code == 201, r.text
            created.append(r.json()["id"])
        # Okta reactivates with PUT active=true, Entra with PATCH "True": half and half, all at once.
        requests = []
        for i, (member_id, email) in enumerate(zip(created, emails, strict=True)):
            url = f"{tenant.base}/Users/{member_id}"
            if i % 2:
                requests.append(http.put(url, json=okta_user(email, active=True), headers=tenant.headers))
            else:
                body = {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": "True"}],
                }
                requests.append(http.patch(url, json=body, headers=tenant.headers))
        responses = await asyncio.gather(*requests)
    statuses = Counter(r.status_code for r in responses)
    used, purchased, deltas, _ = await _seat_state(db, tenant)
    _report("reactivations (PUT + PATCH)", db.dialect, statuses, seats=free, used=used, purchased=purchased)
    assert statuses == {200: free, 403: ATTEMPTS - free}
    assert (used, purchased, deltas) == (free, free, [])


@pytest.mark.parametrize("known", [False, True], ids=["new-person", "known-person"])
async def test_one_person_provisioned_to_many_workspaces_at_once(
    server: LiveServer, db: Database, known: bool
) -> None:
    tenants = [await make_tenant(db, f"W{i}") for i in range(WORKSPACES)]
    email = f"ada-{uuid.uuid4().hex[:6]}@{unique_domain()}"
    async with _http(server) as http:
        if known:  # the person row exists already (a dormant member elsewhere): only its row lock serialises
            former = await make_tenant(db, "Former")
            r = await http.post(
                f"{former.base}/Users", json=okta_user(email, active=False), headers=former.headers
            )
            assert r.status_code == 201
        responses = await asyncio.gather(
            *(http.post(f"{t.base}/Users", json=okta_user(email), headers=t.headers) for t in tenants)
        )
    statuses = Counter(r.status_code for r in responses)
    _report(
        f"same person into {WORKSPACES} workspaces ({'known' if known else 'new'} person)",
        db.dialect,
        statuses,
    )
    assert statuses == {201: 1, 409: len(tenants) - 1}
    assert all(r.json()["scimType"] == "uniqueness" for r in responses if r.status_code == 409)


async def test_many_independent_sessions(database_url: str, db: Database) -> None:
    """The same guarantees straight through the domain services, one session (connection) per attempt."""
    free = 9
    tenant = await make_tenant(db, seats=free, auto_charge=True, max_seats=free + 3)
    other = await make_tenant(db, "Other")
    domain = unique_domain()
    pool = Database.from_url(database_url, pool_size=ATTEMPTS)
    try:

        async def attempt(i: int) -> str:
            # Every fourth attempt goes to the other workspace (which has seats to spare).
            target = other if i % 4 == 0 else tenant
            email = f"u{i}@{domain}"
            try:
                async with pool.writing() as session:
                    ws = (
                        await session.execute(select(Workspace).where(Workspace.id == target.id))
                    ).scalar_one()
                    await member_service.create_member(
                        session, ws, okta_user(email), actor="test", by=CLI_ACTOR
                    )
                return f"{target.name}:ok"
            except DomainError as exc:
                return f"{target.name}:{exc.kind.value}"

        first = await asyncio.gather(*(attempt(i) for i in range(ATTEMPTS)))
        # Now the same people again into the first workspace: those active in the other one conflict.
        again = await asyncio.gather(
            *(
                _create_in(pool, tenant, f"u{i}@{domain}")
                for i in range(0, ATTEMPTS, 4)  # the people the other workspace got
            )
        )
    finally:
        await pool.dispose()
    outcomes = Counter(first)
    used, purchased, deltas, after = await _seat_state(db, tenant)
    _report(
        "independent sessions, auto-charge",
        db.dialect,
        Counter(o.replace(tenant.name, "tenant").replace(other.name, "other") for o in first),
        seats_before=free,
        max_seats=free + 3,
        used=used,
        purchased=purchased,
    )
    assert outcomes[f"{tenant.name}:ok"] == free + 3
    assert outcomes[f"{tenant.name}:forbidden"] == ATTEMPTS - ATTEMPTS // 4 - (free + 3)
    assert outcomes[f"{other.name}:ok"] == ATTEMPTS // 4
    assert (used, purchased, deltas, after) == (free + 3, free + 3, [1, 1, 1], [free + 1, free + 2, free + 3])
    assert set(again) == {"conflict"}


async def _create_in(pool: Database, tenant: Tenant, email: str) -> str:
    try:
        async with pool.writing() as session:
            ws = (await session.execute(select(Workspace).where(Workspace.id == tenant.id))).scalar_one()
            await member_service.create_member(session, ws, okta_user(email), actor="test", by=CLI_ACTOR)
        return "ok"
    except DomainError as exc:
        return exc.kind.value


async def test_person_race_with_a_widened_window(
    database_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A known person provisioned into many workspaces at once, with a pause between the one-workspace
    check and the commit: only the person row lock keeps the second workspace out."""
    from provisio.domain import membership

    original = membership.ensure_not_active_elsewhere

    async def slow_check(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)
        await asyncio.sleep(0.05)

    monkeypatch.setattr(membership, "ensure_not_active_elsewhere", slow_check)
    tenants = [await make_tenant(db, f"R{i}") for i in range(10)]
    email = f"grace@{unique_domain()}"
    former = await make_tenant(db, "Former")
    assert await _create_in(db, former, email) == "ok"
    async with db.writing() as session:  # dormant there: the person row exists
        ws = (await session.execute(select(Workspace).where(Workspace.id == former.id))).scalar_one()
        page = await member_service.list_members(session, ws, where=None, order_by=[], offset=0, limit=1)
        page.members[0].active = False
    pool = Database.from_url(database_url, pool_size=len(tenants))
    try:
        outcomes = Counter(await asyncio.gather(*(_create_in(pool, t, email) for t in tenants)))
    finally:
        await pool.dispose()
    _report("same known person, widened window", db.dialect, outcomes)
    assert outcomes == {"ok": 1, "conflict": len(tenants) - 1}
