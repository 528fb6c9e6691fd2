"""Workspaces and members through /api/v1: create, read, change, list with cursors."""

from __future__ import annotations

import uuid

import httpx

from provisio.db.engine import Database
from provisio.domain import seats as seat_service
from tests.api.test_auth_and_problems import problem
from tests.conftest import BASE_URL, make_tenant
from tests.domain.helpers import okta_user

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def test_create_read_update_and_disable_a_workspace(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    key = f"acme-{uuid.uuid4().hex[:6]}"
    r = await client.post("/api/v1/workspaces", headers=api, json={"name": "Acme", "key": key, "seats": 3})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"] == key
    assert created["tenant_url"] == f"{BASE_URL}/scim/v2/{key}"
    assert (created["scim_enabled"], created["seats_purchased"], created["members"]) == (False, 3, 0)
    assert r.headers["location"] == f"/api/v1/workspaces/{key}"
    async with db.reading() as session:
        ws_id = created["id"]
        [entry] = await seat_service.ledger(session, ws_id)
    assert entry.actor == "API key host app"

    assert (await client.get(f"/api/v1/workspaces/{key}", headers=api)).json() == created
    body = problem(
        await client.post("/api/v1/workspaces", headers=api, json={"name": "Acme", "key": key}), 409
    )
    assert key in str(body["detail"])
    problem(await client.post("/api/v1/workspaces", headers=api, json={"name": "X", "key": "Not Safe"}), 400)
    problem(await client.post("/api/v1/workspaces", headers=api, json={"name": "   "}), 400)

    # Without a key, one is made from the name.
    r = await client.post("/api/v1/workspaces", headers=api, json={"name": "Globex Corp"})
    assert r.status_code == 201 and r.json()["key"].startswith("globex-corp")

    r = await client.patch(
        f"/api/v1/workspaces/{key}", headers=api, json={"name": "Acme Inc", "allow_other_domains": True}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["allow_other_domains"]) == ("Acme Inc", True)
    problem(await client.patch(f"/api/v1/workspaces/{key}", headers=api, json={"name": " "}), 400)
    problem(await client.patch(f"/api/v1/workspaces/{key}", headers=api, json={"seats": 4}), 422)
    problem(await client.patch("/api/v1/workspaces/nope-nope", headers=api, json={"name": "N"}), 404)

    # Disabling refuses the workspace's SCIM credentials, and keeps its SCIM switch as it was.
    tenant = await make_tenant(db)
    assert (await client.get(f"{tenant.base}/Users", headers=tenant.headers)).status_code == 200
    r = await client.post(f"/api/v1/workspaces/{tenant.key}/disable", headers=api)
    assert r.status_code == 200 and r.json()["disabled"] is True and r.json()["scim_enabled"] is True
    assert (await client.get(f"{tenant.base}/Users", headers=tenant.headers)).status_code == 403


async def test_workspace_cursor_pages_have_no_duplicates_or_misses(
    client: httpx.AsyncClient, api: dict[str, str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    made = set()
    for i in range(7):
        r = await client.post("/api/v1/workspaces", headers=api, json={"name": f"Page {tag} {i}"})
        made.add(r.json()["key"])
    seen: list[str] = []
    after = ""
    while True:
        r = await client.get("/api/v1/workspaces", headers=api, params={"after": after, "limit": 3})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 3
        seen += [w["key"] for w in page["items"]]
        if page["next_cursor"] is None:
            break
        after = page["next_cursor"]
    # Ordered by the database's collation of the key; every workspace once.
    assert len(seen) == len(set(seen))
    assert made <= set(seen)


async def test_members_list_filters_and_cursor(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    tenant = await make_tenant(db)
    emails = [f"user{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(5)]
    for email in emails:
        user = okta_user(email)
        user[ENTERPRISE] = {"employeeNumber": "42", "department": "R&D"}
        user["schemas"].append(ENTERPRISE)
        user["externalId"] = f"ext-{email}"
        r = await client.post(f"{tenant.base}/Users", headers=tenant.headers, json=user)
        assert r.status_code == 201, r.text
    # One deactivated.
    r = await client.get(
        f"{tenant.base}/Users", headers=tenant.headers, params={"filter": f'userName eq "{emails[0]}"'}
    )
    first_id = r.json()["Resources"][0]["id"]
    r = await client.patch(
        f"{tenant.base}/Users/{first_id}",
        headers=tenant.headers,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )
    assert r.status_code == 200, r.text

    base = f"/api/v1/workspaces/{tenant.key}/members"
    seen: list[str] = []
    after = ""
    while True:
        page = (await client.get(base, headers=api, params={"after": after, "limit": 2})).json()
        seen += [m["id"] for m in page["items"]]
        if page["next_cursor"] is None:
            break
        after = page["next_cursor"]
    assert len(seen) == 5 == len(set(seen)) and seen == sorted(seen)

    page = (await client.get(base, headers=api, params={"email": emails[2].upper()})).json()
    [member] = page["items"]
    assert member["userName"] == emails[2]
    assert member["externalId"] == f"ext-{emails[2]}"
    assert member["emails"][0]["value"] == emails[2]
    assert member["name"]["givenName"] == "Ada"
    assert member["enterprise"]["department"] == "R&D"
    assert member["scim"]["meta"]["location"] == f"{BASE_URL}/scim/v2/{tenant.key}/Users/{member['id']}"
    assert (await client.get(f"{base}/{member['id']}", headers=api)).json() == member

    page = (await client.get(base, headers=api, params={"user_name": emails[3]})).json()
    assert [m["userName"] for m in page["items"]] == [emails[3]]
    page = (await client.get(base, headers=api, params={"active": "false"})).json()
    assert [m["id"] for m in page["items"]] == [first_id]
    page = (await client.get(base, headers=api, params={"active": "true", "limit": 10})).json()
    assert len(page["items"]) == 4 and page["next_cursor"] is None
    problem(await client.get(base, headers=api, params={"active": "maybe"}), 422)

    # Tenant isolation: the member is not found through another workspace's key.
    other = await make_tenant(db)
    problem(await client.get(f"/api/v1/workspaces/{other.key}/members/{member['id']}", headers=api), 404)
    assert (await client.get(f"/api/v1/workspaces/{other.key}/members", headers=api)).json()["items"] == []
    problem(await client.get("/api/v1/workspaces/nope-nope/members", headers=api), 404)
