"""Microsoft Entra's sequence: Test Connection, create, both PATCH dialects, DELETE."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import Tenant

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def entra_user(user_name: str) -> dict:
    # The create request Entra documents for its SCIM validator.
    return {
        "schemas": [CORE, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": user_name,
        "active": True,
        "addresses": [{"primary": True, "type": "work", "country": "US", "locality": "Redmond"}],
        "displayName": "Test User",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"familyName": "User", "givenName": "Test"},
        "title": "Engineer",
        ENTERPRISE: {"employeeNumber": "1234", "department": "R&D", "manager": {"value": "boss-id"}},
    }


async def test_test_connection_and_lifecycle(client: httpx.AsyncClient, tenant: Tenant) -> None:
    # Entra appends ?aadOptscim062020 to the Tenant URL; it must be tolerated.
    base = tenant.base
    h = tenant.headers
    # Test Connection: a filter on a random value answers 200 with an empty list.
    r = await client.get(
        f"{base}/Users?aadOptscim062020", params={"filter": f'userName eq "{uuid.uuid4()}"'}, headers=h
    )
    assert r.status_code == 200 and r.json()["totalResults"] == 0 and r.json()["Resources"] == []

    r = await client.post(
        f"{base}/Users?aadOptscim062020", json=entra_user("test.user@contoso.com"), headers=h
    )
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    assert r.json()[ENTERPRISE]["employeeNumber"] == "1234"
    assert r.json()["addresses"][0]["locality"] == "Redmond"  # nothing the IdP sends is lost

    # Matching on externalId.
    r = await client.get(
        f"{base}/Users", params={"filter": 'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"'}, headers=h
    )
    assert [u["id"] for u in r.json()["Resources"]] == [uid]

    # Entra's dialect: capitalised ops, string booleans, value-filter paths, manager as a string.
    entra_patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "renamed@contoso.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Renamed"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "new-boss"},
            {"op": "Replace", "path": "active", "value": "False"},
        ],
    }
    r = await client.patch(f"{base}/Users/{uid}", json=entra_patch, headers=h)
    assert r.status_code in (200, 204), r.text
    r = await client.get(f"{base}/Users/{uid}", headers=h)
    user = r.json()
    assert user["active"] is False
    assert user["emails"][0]["value"] == "renamed@contoso.com"
    assert user["name"]["familyName"] == "Renamed"
    assert user[ENTERPRISE]["manager"]["value"] == "new-boss"

    # The RFC dialect on the same user: path-less replace with lower-case ops and JSON booleans.
    rfc_patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": True, "displayName": "Reactivated"}}],
    }
    r = await client.patch(f"{base}/Users/{uid}", json=rfc_patch, headers=h)
    assert r.status_code in (200, 204), r.text
    r = await client.get(f"{base}/Users/{uid}", headers=h)
    assert r.json()["active"] is True and r.json()["displayName"] == "Reactivated"

    # manager "" removes the manager.
    r = await client.patch(
        f"{base}/Users/{uid}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": ""}],
        },
        headers=h,
    )
    assert r.status_code in (200, 204), r.text
    r = await client.get(f"{base}/Users/{uid}", headers=h)
    assert "manager" not in r.json().get(ENTERPRISE, {})

    # DELETE: gone from SCIM afterwards.
    r = await client.delete(f"{base}/Users/{uid}", headers=h)
    assert r.status_code == 204
    r = await client.get(f"{base}/Users/{uid}", headers=h)
    assert r.status_code == 404
    r = await client.delete(f"{base}/Users/{uid}", headers=h)
    assert r.status_code == 404
    # The userName is free again for a new user.
    r = await client.post(f"{base}/Users", json=entra_user("renamed@contoso.com"), headers=h)
    assert r.status_code == 201


async def test_patch_that_hits_nothing_is_an_error(client: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await client.post(f"{tenant.base}/Users", json=entra_user("x@contoso.com"), headers=tenant.headers)
    uid = r.json()["id"]
    r = await client.patch(
        f"{tenant.base}/Users/{uid}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "path": 'emails[value eq "nobody@x.com"].type', "value": "home"}
            ],
        },
        headers=tenant.headers,
    )
    assert r.status_code == 400
    assert r.json()["scimType"] == "noTarget"
