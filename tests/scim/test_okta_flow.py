"""Okta's provisioning sequence: lookup, create, get, PUT update/deactivate/reactivate."""

from __future__ import annotations

import httpx

from tests.conftest import Tenant

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def okta_user(user_name: str, given: str = "Ada", family: str = "Lovelace", active: bool = True) -> dict:
    # The shape Okta's SCIM 2.0 connector sends with the five mapped attributes.
    return {
        "schemas": [CORE],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": "00u1abcd",
        "groups": [],
        "password": "never-stored-1!",
        "active": active,
    }


async def lookup(client: httpx.AsyncClient, tenant: Tenant, user_name: str) -> httpx.Response:
    return await client.get(
        f"{tenant.base}/Users",
        params={"filter": f'userName eq "{user_name}"', "startIndex": 1, "count": 100},
        headers=tenant.headers,
    )


async def test_okta_full_sequence(client: httpx.AsyncClient, tenant: Tenant) -> None:
    # 1. Okta looks the user up first and expects an empty list, not a 404.
    r = await lookup(client, tenant, "ada@example.com")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/scim+json")
    assert r.json() == {
        "schemas": [LIST],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }

    # 2. Create.
    r = await client.post(f"{tenant.base}/Users", json=okta_user("ada@example.com"), headers=tenant.headers)
    assert r.status_code == 201, r.text
    user = r.json()
    uid = user["id"]
    assert user["userName"] == "ada@example.com"
    assert user["active"] is True
    assert "password" not in user
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"].endswith(f"/Users/{uid}")
    assert r.headers["location"] == user["meta"]["location"]
    assert r.headers["etag"] == user["meta"]["version"]

    # 3. Get by id.
    r = await client.get(f"{tenant.base}/Users/{uid}", headers=tenant.headers)
    assert r.status_code == 200
    assert r.json()["name"] == {"givenName": "Ada", "familyName": "Lovelace"}

    # 4. PUT a profile update.
    body = okta_user("ada@example.com", given="Augusta") | {"id": uid}
    r = await client.put(f"{tenant.base}/Users/{uid}", json=body, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["name"]["givenName"] == "Augusta"
    assert r.json()["meta"]["version"] != user["meta"]["version"]

    # 5. PUT active=false deactivates; the user stays visible.
    r = await client.put(f"{tenant.base}/Users/{uid}", json=body | {"active": False}, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["active"] is False
    r = await lookup(client, tenant, "ada@example.com")
    assert r.json()["totalResults"] == 1 and r.json()["Resources"][0]["active"] is False

    # 6. PUT active=true reactivates.
    r = await client.put(f"{tenant.base}/Users/{uid}", json=body | {"active": True}, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["active"] is True

    # 7. The same userName in another case is a duplicate.
    r = await client.post(f"{tenant.base}/Users", json=okta_user("ADA@Example.COM"), headers=tenant.headers)
    assert r.status_code == 409
    err = r.json()
    assert err["schemas"] == [ERROR] and err["status"] == "409" and err["scimType"] == "uniqueness"
    assert "already exists" in err["detail"]

    # 8. An upper-cased lookup finds the user (userName is caseExact=false).
    r = await lookup(client, tenant, "ADA@EXAMPLE.COM")
    assert r.json()["totalResults"] == 1
    assert r.json()["Resources"][0]["id"] == uid
    assert r.json()["Resources"][0]["userName"] == "ada@example.com"  # original casing kept


async def test_okta_patch_deactivate(client: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await client.post(f"{tenant.base}/Users", json=okta_user("grace@example.com"), headers=tenant.headers)
    uid = r.json()["id"]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    r = await client.patch(f"{tenant.base}/Users/{uid}", json=patch, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False


async def test_unknown_user_is_scim_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await client.get(f"{tenant.base}/Users/00000000-0000-0000-0000-000000000000", headers=tenant.headers)
    assert r.status_code == 404
    assert r.json()["schemas"] == [ERROR] and r.json()["status"] == "404"
    assert r.json()["detail"]
