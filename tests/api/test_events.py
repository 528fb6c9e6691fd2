"""``/api/v1/events``: the host application's pull API. Pages oldest first with a cursor that is always
there, filters, problem documents, the cursor of "now", the events the API and the CLI cause, and a
poller racing concurrent SCIM writers that sees every committed event exactly once."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import httpx
import pytest

from provisio.db.engine import Database
from provisio.domain import host_events
from provisio.domain import workspaces as workspace_service
from tests.api.conftest import new_key
from tests.api.test_auth_and_problems import problem
from tests.conftest import Tenant, make_tenant
from tests.domain.helpers import PATCH, okta_patch_active, okta_user, unique_domain
from tests.domain.test_cli import cli, ok
from tests.event_reading import events_after, settle

ENVELOPE = {"id", "type", "workspace", "workspace_id", "occurred_at", "actor", "data"}


async def _cursor(db: Database, client: httpx.AsyncClient, api: dict[str, str]) -> str:
    """The cursor of now, once everything committed so far is readable (``settle``)."""
    await settle(db)
    r = await client.get("/api/v1/events/cursor", headers=api)
    assert r.status_code == 200, r.text
    return str(r.json()["cursor"])


async def _page(client: httpx.AsyncClient, api: dict[str, str], **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/events", headers=api, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"data", "next_cursor", "has_more"}
    return body


async def _everything(
    db: Database, client: httpx.AsyncClient, api: dict[str, str], after: str, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every event after ``after`` committed so far, page by page; the events and the last cursor."""
    await settle(db)
    found: list[dict[str, Any]] = []
    while True:
        body = await _page(client, api, after=after, **params)
        found += body["data"]
        after = body["next_cursor"]
        if not body["has_more"]:
            return found, after


async def _lifecycle(client: httpx.AsyncClient, tenant: Tenant, n: int) -> list[str]:
    """``n`` members created, each updated and deactivated: 3n events; the member ids."""
    ids = []
    for i in range(n):
        email = f"user{i}@{unique_domain()}"
        r = await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
        assert r.status_code == 201, r.text
        url = f"{tenant.base}/Users/{r.json()['id']}"
        title = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "title", "value": f"T{i}"}]}
        assert (await client.patch(url, json=title, headers=tenant.headers)).status_code == 200
        assert (
            await client.patch(url, json=okta_patch_active(False), headers=tenant.headers)
        ).status_code == 200
        ids.append(r.json()["id"])
    return ids


async def test_pages_oldest_first_each_event_once(
    client: httpx.AsyncClient, api: dict[str, str], db: Database, tenant: Tenant
) -> None:
    start = await _cursor(db, client, api)
    ids = await _lifecycle(client, tenant, 4)
    await settle(db)
    seen: list[dict[str, Any]] = []
    after = start
    while True:
        body = await _page(client, api, after=after, limit=5, workspace=tenant.key)
        assert len(body["data"]) <= 5
        seen += body["data"]
        if body["data"]:
            assert body["next_cursor"] != after
        after = body["next_cursor"]
        if not body["has_more"]:
            break
    expected = [
        (t, member_id)
        for member_id in ids
        for t in (host_events.MEMBER_CREATED, host_events.MEMBER_UPDATED, host_events.MEMBER_DEACTIVATED)
    ]
    assert [(e["type"], e["data"]["member"]["id"]) for e in seen] == expected
    assert len({e["id"] for e in seen}) == len(seen) == 12
    for e in seen:
        assert set(e) == ENVELOPE
        assert (e["workspace"], e["workspace_id"]) == (tenant.key, tenant.id)
        assert e["occurred_at"].endswith("Z") and e["actor"]["type"] == "idp"
    # Each event read again by its id is the same document.
    one = await client.get(f"/api/v1/events/{seen[5]['id']}", headers=api)
    assert one.status_code == 200 and one.json() == seen[5]

    # Nothing new: no events, and the cursor handed back is the one sent.
    body = await _page(client, api, after=after, workspace=tenant.key)
    assert body == {"data": [], "next_cursor": after, "has_more": False}
    # The same read without the workspace filter passes the other workspaces' events, never ours again.
    others, _ = await _everything(db, client, api, start)
    assert [e["id"] for e in others if e["workspace_id"] == tenant.id] == [e["id"] for e in seen]


async def test_without_after_from_the_oldest_and_a_cursor_for_the_start(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, f"Quiet {uuid.uuid4().hex[:6]}")
    body = await _page(client, api, workspace=ws.key)
    # Nothing of this workspace yet: a cursor past the other workspaces' events, which it left out.
    assert body["data"] == [] and body["has_more"] is False
    start = body["next_cursor"]
    r = await client.post(f"/api/v1/workspaces/{ws.key}/seats/purchases", headers=api, json={"quantity": 2})
    assert r.status_code == 201, r.text
    await settle(db)
    body = await _page(client, api, workspace=ws.key, after=start)
    assert [e["type"] for e in body["data"]] == [host_events.SEATS_PURCHASED]
    assert (await _page(client, api, workspace=ws.key))["data"] == body["data"]


async def test_the_cursor_of_now_skips_the_history(
    client: httpx.AsyncClient, api: dict[str, str], db: Database, tenant: Tenant
) -> None:
    await _lifecycle(client, tenant, 1)
    await settle(db)
    now = await _cursor(db, client, api)
    assert (await _page(client, api, after=now, workspace=tenant.key))["data"] == []
    ids = await _lifecycle(client, tenant, 1)
    found, _ = await _everything(db, client, api, now, workspace=tenant.key)
    assert [e["data"]["member"]["id"] for e in found] == ids * 3


async def test_filters(client: httpx.AsyncClient, api: dict[str, str], db: Database) -> None:
    first, second = await make_tenant(db), await make_tenant(db)
    start = await _cursor(db, client, api)
    await _lifecycle(client, first, 1)
    await _lifecycle(client, second, 2)
    mine, _ = await _everything(db, client, api, start, workspace=second.key)
    assert {e["workspace"] for e in mine} == {second.key} and len(mine) == 6
    wanted = f"{host_events.MEMBER_CREATED}, {host_events.MEMBER_DEACTIVATED}"
    typed, _ = await _everything(db, client, api, start, workspace=second.key, types=wanted)
    assert [e["type"] for e in typed] == [host_events.MEMBER_CREATED, host_events.MEMBER_DEACTIVATED] * 2
    everyone, _ = await _everything(db, client, api, start, types=host_events.MEMBER_CREATED)
    ours = [e["workspace"] for e in everyone if e["workspace"] in (first.key, second.key)]
    assert ours == [first.key, second.key, second.key]


async def test_errors_are_problem_documents(client: httpx.AsyncClient, api: dict[str, str]) -> None:
    body = problem(await client.get("/api/v1/events", headers=api, params={"workspace": "no-such-ws"}), 404)
    assert "no-such-ws" in str(body["detail"])
    past_bigint = base64.urlsafe_b64encode(("9" * 30 + ".0").encode()).decode().rstrip("=")
    for bad in ("nonsense", "MTIz", "!!", "A" * 64, past_bigint):
        body = problem(await client.get("/api/v1/events", headers=api, params={"after": bad}), 422)
        assert "next_cursor" in str(body["detail"])
        assert body["errors"] == [{"field": "after", "in": "query", "detail": body["detail"]}]
    body = problem(
        await client.get("/api/v1/events", headers=api, params={"types": "member.created,member.exploded"}),
        422,
    )
    assert "member.exploded" in str(body["detail"]) and "seats.purchased" in str(body["detail"])
    assert body["errors"][0]["field"] == "types"
    for limit in ("0", "501", "ten"):
        body = problem(await client.get("/api/v1/events", headers=api, params={"limit": limit}), 422)
        assert body["errors"][0]["field"] == "limit"
    problem(await client.get("/api/v1/events/evt_0000", headers=api), 404)
    problem(await client.get("/api/v1/events"), 401)
    problem(await client.get("/api/v1/events/cursor"), 401)
    refused = await client.post("/api/v1/events", headers=api)
    problem(refused, 405)
    assert refused.headers["allow"] == "GET"


async def test_documented_in_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/events", "/api/v1/events/cursor", "/api/v1/events/{event_id}"):
        operation = paths[path]["get"]
        assert operation["summary"] and operation["description"] and operation["tags"] == ["events"]
    assert "next_cursor" in paths["/api/v1/events"]["get"]["description"]


async def test_api_and_cli_changes_name_the_operator(
    client: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    issued = await new_key(db, "billing sync")
    api = {"Authorization": f"Bearer {issued.key}"}
    operator = {"type": "operator", "id": str(issued.id), "name": "billing sync"}
    start = await _cursor(db, client, api)
    key = f"evt-{uuid.uuid4().hex[:6]}"
    assert (
        await client.post("/api/v1/workspaces", headers=api, json={"name": "Evt", "key": key, "seats": 3})
    ).status_code == 201
    r = await client.post(f"/api/v1/workspaces/{key}/seats/purchases", headers=api, json={"quantity": 2})
    assert r.status_code == 201
    domain = unique_domain()
    r = await client.post(
        f"/api/v1/workspaces/{key}/domains", headers=api, json={"domain": domain, "verified": True}
    )
    assert r.status_code == 201, r.text
    for enabled in (True, True, False):
        r = await client.patch(f"/api/v1/workspaces/{key}/scim", headers=api, json={"enabled": enabled})
        assert r.status_code == 200, r.text
    found, after = await _everything(db, client, api, start, workspace=key)
    assert [(e["type"], e["data"]) for e in found] == [
        (
            host_events.SEATS_PURCHASED,
            {"quantity": 3, "total": 3, "how": "manual", "reason": "initial purchase of 3 seat(s)"},
        ),
        (
            host_events.SEATS_PURCHASED,
            {"quantity": 2, "total": 5, "how": "manual", "reason": "bought 2 seat(s)"},
        ),
        (host_events.WORKSPACE_SCIM_ENABLED, {"scim_enabled": True, "method": "bearer"}),
        (host_events.WORKSPACE_SCIM_DISABLED, {"scim_enabled": False, "method": "bearer"}),
    ]
    assert all(e["actor"] == operator for e in found)

    cli_actor = {"type": "operator", "id": None, "name": "cli"}
    ok(await asyncio.to_thread(cli, database_url, "seats", "set", key, "--purchased", "8", "--json"))
    ok(await asyncio.to_thread(cli, database_url, "seats", "set", key, "--purchased", "6", "--json"))
    ok(await asyncio.to_thread(cli, database_url, "scim", "configure", key, "--method", "bearer", "--json"))
    more, _ = await _everything(db, client, api, after, workspace=key)
    assert [(e["type"], e["data"].get("quantity"), e["data"].get("total")) for e in more] == [
        (host_events.SEATS_PURCHASED, 3, 8),
        (host_events.SEATS_PURCHASED, -2, 6),  # the operator's override may lower the count
        (host_events.WORKSPACE_SCIM_ENABLED, None, None),
    ]
    assert all(e["actor"] == cli_actor for e in more)


# --- a poller racing concurrent writers ---------------------------------------------------------------

WRITERS = 8
ROUNDS = 3


async def _writer(client: httpx.AsyncClient, tenant: Tenant, i: int) -> None:
    for round_ in range(ROUNDS):
        email = f"w{i}-{round_}@{unique_domain()}"
        r = await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
        assert r.status_code == 201, r.text
        url = f"{tenant.base}/Users/{r.json()['id']}"
        title = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "title", "value": f"W{i}"}]}
        assert (await client.patch(url, json=title, headers=tenant.headers)).status_code == 200
        assert (
            await client.put(url, json=okta_user(email, active=False), headers=tenant.headers)
        ).status_code == 200
        assert (await client.delete(url, headers=tenant.headers)).status_code == 204


async def test_a_poller_racing_writers_sees_every_event_exactly_once(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    """Writers commit in an order of their own while a poller pages through with small pages: whatever
    it read while they ran and after, it has every event they committed, once, in the stored order."""
    tenants = [await make_tenant(db), await make_tenant(db)]
    cursor = await _cursor(db, client, api)
    start = host_events.Position.decode(cursor)
    polled: list[dict[str, Any]] = []
    writing = True

    async def poll() -> None:
        nonlocal cursor
        while True:
            still_writing = writing
            if not still_writing:
                await settle(db)  # the writers are done: drain what they committed
            body = await _page(client, api, after=cursor, limit=7)
            polled.extend(body["data"])
            cursor = body["next_cursor"]
            if not still_writing and not body["has_more"]:
                return
            if not body["data"]:
                await asyncio.sleep(0.005)

    poller = asyncio.create_task(poll())
    try:
        await asyncio.gather(*(_writer(client, tenants[i % 2], i) for i in range(WRITERS)))
    finally:
        writing = False
    await asyncio.wait_for(poller, 120)

    ids = [e["id"] for e in polled]
    assert len(ids) == len(set(ids)), "an event was read twice"
    stored = [e for e in await events_after(db, start) if e.workspace_id in {t.id for t in tenants}]
    ours = [e["id"] for e in polled if e["workspace_id"] in {t.id for t in tenants}]
    assert ours == [e.id for e in stored], "the poller missed an event, or read them out of order"
    assert len(stored) == WRITERS * ROUNDS * 4
    per_type = {t: sum(e.type == t for e in stored) for t in {e.type for e in stored}}
    assert per_type == {
        host_events.MEMBER_CREATED: WRITERS * ROUNDS,
        host_events.MEMBER_UPDATED: WRITERS * ROUNDS,
        host_events.MEMBER_DEACTIVATED: WRITERS * ROUNDS,
        host_events.MEMBER_DELETED: WRITERS * ROUNDS,
    }


async def test_a_filtered_poll_moves_past_the_events_it_leaves_out(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    """Else a filter that rarely matches leaves the cursor where it was, and every poll scans again
    everything written since."""
    quiet, busy = await make_tenant(db), await make_tenant(db)
    start = await _cursor(db, client, api)
    await _lifecycle(client, busy, 2)
    await settle(db)
    busy_events = await _page(client, api, after=start, workspace=busy.key)
    assert len(busy_events["data"]) == 6
    first = await _page(client, api, after=start, workspace=quiet.key)
    assert first["data"] == [] and first["has_more"] is False
    # At least as far as the last event it left out.
    moved = host_events.Position.decode(first["next_cursor"])
    assert (
        moved >= host_events.Position.decode(busy_events["next_cursor"]) > host_events.Position.decode(start)
    )
    # Nothing new: the cursor stays, and what the filter selects next is not skipped.
    again = await _page(client, api, after=first["next_cursor"], workspace=quiet.key)
    assert again == {"data": [], "next_cursor": first["next_cursor"], "has_more": False}
    await _lifecycle(client, quiet, 1)
    mine, _ = await _everything(db, client, api, first["next_cursor"], workspace=quiet.key)
    assert [e["type"] for e in mine] == [
        host_events.MEMBER_CREATED,
        host_events.MEMBER_UPDATED,
        host_events.MEMBER_DEACTIVATED,
    ]


async def test_a_filtered_poll_never_passes_an_event_still_being_committed(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    quiet, busy = await make_tenant(db), await make_tenant(db)
    start = await _cursor(db, client, api)
    async with db.writing() as writer:  # a change of the quiet workspace, committing late
        await host_events.emit(
            writer,
            type=host_events.SEATS_PURCHASED,
            workspace_id=quiet.id,
            actor=host_events.CLI_ACTOR,
            data={},
        )
        await writer.flush()
        await _lifecycle(client, busy, 1)  # committed meanwhile, after it in the order
        polled = await _page(client, api, after=start, workspace=quiet.key)
        assert polled["data"] == []
        cursor = polled["next_cursor"]
    late, _ = await _everything(db, client, api, cursor, workspace=quiet.key)
    assert [e["type"] for e in late] == [host_events.SEATS_PURCHASED]
