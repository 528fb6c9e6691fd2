"""Every SCIM write tells the host application exactly what changed, in its own transaction: one host
event per change (``provisio.domain.host_events``), none for a request that changes nothing or is
refused. Both dialects: Okta (PUT, path-less PATCH with JSON booleans) and Entra (capitalised ops,
string booleans, value-filter paths, the enterprise extension), by bearer token and by OAuth client."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import ScimToken
from provisio.domain import host_events
from provisio.domain.host_events import StoredEvent
from provisio.domain.scim_methods import ScimMethod
from tests.conftest import Tenant, make_tenant
from tests.domain.helpers import PATCH, entra_active, okta_patch_active, okta_user, unique_domain
from tests.event_reading import events_after, tail
from tests.oauth.helpers import make_oauth_tenant
from tests.scim.test_entra_flow import ENTERPRISE, entra_user


class Recorder:
    """The events of one workspace since it was made."""

    def __init__(self, db: Database, workspace_id: str) -> None:
        self.db, self.workspace_id = db, workspace_id
        self.cursor = host_events.START

    async def start(self) -> Recorder:
        self.cursor = await tail(self.db)
        return self

    async def new(self) -> list[StoredEvent]:
        """The events committed since the last call, oldest first."""
        found = await events_after(self.db, self.cursor, self.workspace_id)
        if found:
            self.cursor = found[-1].position
        return found


async def _token_actor(db: Database, tenant: Tenant) -> dict[str, Any]:
    async with db.reading() as session:
        token_id = (
            await session.execute(select(ScimToken.id).where(ScimToken.workspace_id == tenant.id))
        ).scalar_one()
    return {"type": "idp", "id": token_id, "name": "bearer token test"}


def _as_served(resource: dict[str, Any]) -> dict[str, Any]:
    """A User as the SCIM API serves it, without ``meta.location`` (which depends on the URL)."""
    meta = {k: v for k, v in resource["meta"].items() if k != "location"}
    return {**resource, "meta": meta}


def _check_snapshot(event: StoredEvent, served: dict[str, Any]) -> None:
    """The event's member is the one the SCIM API serves."""
    member = event.data["member"]
    assert member["scim"] == _as_served(served)
    assert member["id"] == served["id"] and member["userName"] == served["userName"]
    assert member["emails"] == served.get("emails", [])
    assert member["name"] == served.get("name")
    assert member["externalId"] == served.get("externalId")
    assert member["enterprise"] == served.get(ENTERPRISE)


async def _get(client: httpx.AsyncClient, tenant: Tenant, member_id: str) -> dict[str, Any]:
    r = await client.get(f"{tenant.base}/Users/{member_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _one(events: list[StoredEvent], type: str) -> StoredEvent:
    assert [e.type for e in events] == [type], [(e.type, e.data.get("changed")) for e in events]
    return events[0]


async def test_okta_lifecycle_emits_one_event_per_change(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    recorder = await Recorder(db, tenant.id).start()
    actor = await _token_actor(db, tenant)
    email = f"ada@{unique_domain()}"
    r = await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    url = f"{tenant.base}/Users/{uid}"
    created = _one(await recorder.new(), host_events.MEMBER_CREATED)
    assert created.actor == actor and created.workspace_key == tenant.key
    assert "changed" not in created.data
    _check_snapshot(created, r.json())
    assert created.data["member"]["active"] is True

    # The same document again changes nothing: no event.
    assert (await client.put(url, json=okta_user(email), headers=tenant.headers)).status_code == 200
    assert await recorder.new() == []

    r = await client.put(
        url, json={**okta_user(email, given="Augusta"), "title": "Countess"}, headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    updated = _one(await recorder.new(), host_events.MEMBER_UPDATED)
    assert updated.data["changed"] == ["displayName", "name.givenName", "title"]
    assert updated.actor == actor
    _check_snapshot(updated, await _get(client, tenant, uid))

    # Okta's path-less PATCH with a JSON boolean: deactivation is told by its own type.
    r = await client.patch(url, json=okta_patch_active(False), headers=tenant.headers)
    assert r.status_code == 200, r.text
    off = _one(await recorder.new(), host_events.MEMBER_DEACTIVATED)
    assert off.data["changed"] == ["active"] and off.data["member"]["active"] is False
    _check_snapshot(off, await _get(client, tenant, uid))
    assert (await client.patch(url, json=okta_patch_active(False), headers=tenant.headers)).status_code == 200
    assert await recorder.new() == []

    r = await client.patch(url, json=okta_patch_active(True), headers=tenant.headers)
    assert r.status_code == 200, r.text
    on = _one(await recorder.new(), host_events.MEMBER_REACTIVATED)
    assert on.data["changed"] == ["active"] and on.data["member"]["active"] is True

    # A PUT that deactivates and changes an attribute is one event: the deactivation, with both.
    body = {**okta_user(email, given="Augusta", active=False), "title": "Analyst"}
    assert (await client.put(url, json=body, headers=tenant.headers)).status_code == 200
    both = _one(await recorder.new(), host_events.MEMBER_DEACTIVATED)
    assert both.data["changed"] == ["active", "title"]

    last = await _get(client, tenant, uid)
    assert (await client.delete(url, headers=tenant.headers)).status_code == 204
    deleted = _one(await recorder.new(), host_events.MEMBER_DELETED)
    assert deleted.actor == actor and "changed" not in deleted.data
    assert deleted.data["member"]["active"] is False
    assert deleted.data["member"]["scim"]["userName"] == last["userName"]
    assert deleted.data["member"]["scim"]["meta"]["version"] != last["meta"]["version"]


async def test_a_patch_that_changes_nothing_emits_nothing(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    email = f"lin@{unique_domain()}"
    r = await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
    url = f"{tenant.base}/Users/{r.json()['id']}"
    recorder = await Recorder(db, tenant.id).start()
    same = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ada Lovelace"}],
    }
    assert (await client.patch(url, json=same, headers=tenant.headers)).status_code == 200
    assert (await client.put(url, json=okta_user(email), headers=tenant.headers)).status_code == 200
    assert await recorder.new() == []


async def test_entra_dialect(client: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
    )
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    base = tenant.scim_base
    recorder = await Recorder(db, tenant.id).start()
    actor = {"type": "idp", "id": tenant.client_id, "name": f"OAuth client {tenant.client_id}"}

    user_name = f"test.user@{unique_domain()}"
    r = await client.post(f"{base}/Users?aadOptscim062020", json=entra_user(user_name), headers=headers)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    created = _one(await recorder.new(), host_events.MEMBER_CREATED)
    assert created.actor == actor
    member = created.data["member"]
    assert member["externalId"] == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    assert member["enterprise"] == {
        "employeeNumber": "1234",
        "department": "R&D",
        "manager": {"value": "boss-id"},
    }
    assert member["scim"]["addresses"][0]["locality"] == "Redmond"

    # Entra's PATCH: capitalised ops, value-filter paths, the extension, and "False" as a string.
    entra_patch = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"renamed@{unique_domain()}"},
            {"op": "Replace", "path": "name.familyName", "value": "Renamed"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "new-boss"},
            {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Research"},
            {"op": "Replace", "path": "active", "value": "False"},
        ],
    }
    r = await client.patch(f"{base}/Users/{uid}", json=entra_patch, headers=headers)
    assert r.status_code == 200, r.text
    off = _one(await recorder.new(), host_events.MEMBER_DEACTIVATED)
    assert off.data["changed"] == [
        "active",
        "emails",
        "name.familyName",
        f"{ENTERPRISE}:department",
        f"{ENTERPRISE}:manager",
    ]
    assert off.actor == actor
    assert off.data["member"]["enterprise"]["department"] == "Research"
    served = (await client.get(f"{base}/Users/{uid}", headers=headers)).json()
    assert off.data["member"]["scim"] == _as_served(served)

    r = await client.patch(f"{base}/Users/{uid}", json=entra_active(True), headers=headers)
    assert r.status_code == 200, r.text
    on = _one(await recorder.new(), host_events.MEMBER_REACTIVATED)
    assert on.data["changed"] == ["active"]

    assert (await client.delete(f"{base}/Users/{uid}", headers=headers)).status_code == 204
    _one(await recorder.new(), host_events.MEMBER_DELETED)


async def test_refused_writes_emit_nothing(client: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_tenant(db, seats=1)
    email = f"grace@{unique_domain()}"
    r = await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
    url = f"{tenant.base}/Users/{r.json()['id']}"
    recorder = await Recorder(db, tenant.id).start()
    h = tenant.headers

    assert (await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=h)).status_code == 409
    other = okta_user(f"alan@{unique_domain()}")
    assert (await client.post(f"{tenant.base}/Users", json=other, headers=h)).status_code == 403  # no seat
    stale = {**h, "If-Match": 'W/"99"'}
    assert (await client.put(url, json={**okta_user(email), "title": "x"}, headers=stale)).status_code == 412
    assert (await client.patch(url, json=okta_patch_active(False), headers=stale)).status_code == 412
    bad = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": ""}]}
    assert (await client.patch(url, json=bad, headers=h)).status_code == 400
    assert (await client.delete(url, headers=stale)).status_code == 412
    # A reactivation that finds no seat (the other member took it) is refused and rolled back.
    assert (await client.patch(url, json=okta_patch_active(False), headers=h)).status_code == 200
    taken = await client.post(f"{tenant.base}/Users", json=other, headers=h)
    assert taken.status_code == 201
    assert [e.type for e in await recorder.new()] == [
        host_events.MEMBER_DEACTIVATED,
        host_events.MEMBER_CREATED,
    ]
    assert (await client.patch(url, json=okta_patch_active(True), headers=h)).status_code == 403
    assert await recorder.new() == []


async def test_auto_charge_buys_the_seat_before_the_member_is_created_or_reactivated(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant = await make_tenant(db, seats=0, auto_charge=True)
    recorder = await Recorder(db, tenant.id).start()
    actor = await _token_actor(db, tenant)
    ada = f"ada@{unique_domain()}"
    r = await client.post(f"{tenant.base}/Users", json=okta_user(ada), headers=tenant.headers)
    assert r.status_code == 201, r.text
    url = f"{tenant.base}/Users/{r.json()['id']}"
    bought, created = await recorder.new()
    assert (bought.type, created.type) == (host_events.SEATS_PURCHASED, host_events.MEMBER_CREATED)
    assert bought.data == {
        "quantity": 1,
        "total": 1,
        "how": "auto_charge",
        "reason": f"auto-charge for {ada}",
    }
    assert bought.actor == actor
    assert bought.position < created.position

    # Deactivating frees the seat, another member takes it; reactivating buys one more.
    assert (await client.patch(url, json=okta_patch_active(False), headers=tenant.headers)).status_code == 200
    r = await client.post(
        f"{tenant.base}/Users", json=okta_user(f"bob@{unique_domain()}"), headers=tenant.headers
    )
    assert r.status_code == 201
    assert [e.type for e in await recorder.new()] == [
        host_events.MEMBER_DEACTIVATED,
        host_events.MEMBER_CREATED,
    ]
    assert (await client.patch(url, json=okta_patch_active(True), headers=tenant.headers)).status_code == 200
    bought, on = await recorder.new()
    assert (bought.type, on.type) == (host_events.SEATS_PURCHASED, host_events.MEMBER_REACTIVATED)
    assert (bought.data["quantity"], bought.data["total"], bought.data["how"]) == (1, 2, "auto_charge")
