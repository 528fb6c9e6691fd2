"""Concurrent PUTs and PATCHes of one user lose nothing.

On PostgreSQL a plain change is one optimistic statement (applied only while the row is at the version
read; otherwise the request takes the locking transaction), on SQLite every write is serialised. Either
way, N concurrent PATCHes that each add a different value leave all N values, N new versions and N
provisioning events.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent
from provisio.domain import host_events
from provisio.domain import members as member_service
from provisio.domain.events import Event
from provisio.domain.host_events import CLI_ACTOR, START
from tests.conftest import make_tenant
from tests.domain.helpers import okta_user, unique_domain
from tests.event_reading import events_after
from tests.live_server import LiveServer, live_server

WRITERS = 30
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[LiveServer]:
    with live_server(database_url) as live:
        yield live


async def _events(db: Database, member_id: str, action: str) -> int:
    async with db.reading() as session:
        query = select(func.count()).where(
            ProvisioningEvent.member_id == member_id,
            ProvisioningEvent.action == action,
            ProvisioningEvent.outcome == "success",
        )
        return int((await session.execute(query)).scalar_one())


async def test_concurrent_patches_keep_every_change(server: LiveServer, db: Database) -> None:
    tenant = await make_tenant(db)
    limits = httpx.Limits(max_connections=WRITERS, max_keepalive_connections=WRITERS)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as http:
        created = await http.post(
            f"{tenant.base}/Users", json=okta_user(f"ada@{unique_domain()}"), headers=tenant.headers
        )
        assert created.status_code == 201, created.text
        url = f"{tenant.base}/Users/{created.json()['id']}"

        def patch(i: int) -> dict[str, object]:
            value = {"value": f"+1 555 000 {i:04d}", "type": "work"}
            return {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": "phoneNumbers", "value": [value]}],
            }

        responses = await asyncio.gather(
            *(http.patch(url, json=patch(i), headers=tenant.headers) for i in range(WRITERS))
        )
        assert Counter(r.status_code for r in responses) == {200: WRITERS}, [r.text for r in responses]
        final = (await http.get(url, headers=tenant.headers)).json()
    numbers = {p["value"] for p in final["phoneNumbers"]}
    assert numbers == {f"+1 555 000 {i:04d}" for i in range(WRITERS)}
    assert final["meta"]["version"] == f'W/"{1 + WRITERS}"'
    # Every response saw its own change applied on a distinct version.
    assert len({r.json()["meta"]["version"] for r in responses}) == WRITERS
    assert await _events(db, final["id"], "patch") == WRITERS
    # And one host event per change, each showing the version it made: a lost optimistic race wrote none.
    changes = [e for e in await events_after(db, START, tenant.id) if e.type == host_events.MEMBER_UPDATED]
    assert sorted(e.data["member"]["scim"]["meta"]["version"] for e in changes) == sorted(
        f'W/"{v}"' for v in range(2, 2 + WRITERS)
    )
    assert all(e.data["changed"] == ["phoneNumbers"] for e in changes)


async def test_concurrent_puts_each_land_on_their_own_version(server: LiveServer, db: Database) -> None:
    tenant = await make_tenant(db)
    email = f"grace@{unique_domain()}"
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        created = await http.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
        url = f"{tenant.base}/Users/{created.json()['id']}"

        def put(i: int) -> dict[str, object]:
            return {**okta_user(email), "displayName": f"Grace #{i}"}

        responses = await asyncio.gather(
            *(http.put(url, json=put(i), headers=tenant.headers) for i in range(20))
        )
        assert Counter(r.status_code for r in responses) == {200: 20}
        final = (await http.get(url, headers=tenant.headers)).json()
    assert final["meta"]["version"] == 'W/"21"'
    assert sorted(int(r.json()["meta"]["version"].strip('W/"')) for r in responses) == list(range(2, 22))
    assert final["displayName"] in {f"Grace #{i}" for i in range(20)}


async def test_one_statement_replace_refuses_a_stale_version(db: Database) -> None:
    """The optimistic statement writes nothing, event included, when the row moved on since it was read."""
    if not db.single_statement_writes:
        pytest.skip("the one-statement replace is PostgreSQL's")
    tenant = await make_tenant(db)
    async with db.writing() as session:
        created = await member_service.create_member(
            session, _Ref(tenant.id), okta_user(f"lin@{unique_domain()}"), actor="test", by=CLI_ACTOR
        )
    async with db.reading() as session:
        stale = await member_service.get_member(session, _Ref(tenant.id), created.id)
    async with db.writing() as session:
        current = await member_service.get_member(session, _Ref(tenant.id), created.id, lock=True)
        await member_service.replace_member(
            session, _Ref(tenant.id), current, {**current.doc, "title": "CTO"}, by=CLI_ACTOR
        )
    plan = member_service.plan_replacement(stale, {**stale.doc, "displayName": "Stale"})
    assert plan.changed and plan.plain
    event = Event(tenant.id, "test", "patch", "success", 200, stale.id, stale.user_name)
    async with db.autocommit() as session:
        applied = await member_service.replace_member_if_current(
            session, _Ref(tenant.id), stale, plan, event, by=CLI_ACTOR
        )
    assert applied is False
    async with db.reading() as session:
        now = await member_service.get_member(session, _Ref(tenant.id), created.id)
    assert (now.version, now.doc.get("title"), now.doc.get("displayName")) == (
        2,
        "CTO",
        created.doc.get("displayName"),
    )
    assert await _events(db, created.id, "patch") == 0
    members = [e for e in await events_after(db, START, tenant.id) if "member" in e.data]
    assert [(e.type, e.data["member"]["scim"].get("title")) for e in members] == [
        (host_events.MEMBER_CREATED, None),
        (host_events.MEMBER_UPDATED, "CTO"),  # and nothing of the stale replacement
    ]


class _Ref:
    def __init__(self, workspace_id: str) -> None:
        self.id = workspace_id
