"""Authentication (RFC 6750) and tenant isolation: a token of workspace A never sees workspace B."""

from __future__ import annotations

import httpx

from provisio.db.engine import Database
from provisio.domain import domains as domain_service
from provisio.domain import scim_settings as scim_settings_service
from provisio.domain import tokens as token_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from tests.conftest import Tenant, make_tenant
from tests.scim.test_okta_flow import okta_user


async def test_missing_and_bad_tokens_are_401_scim_errors(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = await client.get(f"{tenant.base}/Users", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith('Bearer realm="provisio SCIM"')
        body = r.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert body["status"] == "401" and body["detail"]


async def test_token_of_one_workspace_is_refused_on_another(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    other = await make_tenant(db, "Globex")
    r = await client.post(f"{other.base}/Users", json=okta_user("secret@globex.com"), headers=other.headers)
    assert r.status_code == 201
    other_id = r.json()["id"]

    # A's token on B's tenant URL: refused exactly like an unknown token.
    r = await client.get(f"{other.base}/Users", headers=tenant.headers)
    assert r.status_code == 401
    # B's user is invisible through A's tenant, by id, by filter and in lists.
    r = await client.get(f"{tenant.base}/Users/{other_id}", headers=tenant.headers)
    assert r.status_code == 404
    r = await client.get(
        f"{tenant.base}/Users", params={"filter": 'userName eq "secret@globex.com"'}, headers=tenant.headers
    )
    assert r.json()["totalResults"] == 0
    r = await client.get(f"{tenant.base}/Users", headers=tenant.headers)
    assert other_id not in {u["id"] for u in r.json()["Resources"]}
    # …and cannot be changed or deleted through it.
    r = await client.put(
        f"{tenant.base}/Users/{other_id}", json=okta_user("secret@globex.com"), headers=tenant.headers
    )
    assert r.status_code == 404
    r = await client.delete(f"{tenant.base}/Users/{other_id}", headers=tenant.headers)
    assert r.status_code == 404
    r = await client.get(f"{other.base}/Users/{other_id}", headers=other.headers)
    assert r.status_code == 200 and r.json()["active"] is True


async def test_a_new_workspace_starts_with_scim_off(client: httpx.AsyncClient, db: Database) -> None:
    """Off until a domain is verified: a token issued before then is refused as for any workspace with
    SCIM turned off, on reads as on writes, so a connection test cannot pass while every create fails."""
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, "Beta Co")
        assert not ws.scim_enabled
        issued = await token_service.create_token(session, ws)  # the primitive, below the rule
    headers = {"Authorization": f"Bearer {issued.token}"}
    for r in (
        await client.get(f"/scim/v2/{ws.key}/Users", headers=headers),
        await client.post(f"/scim/v2/{ws.key}/Users", json={"userName": "ada@beta.test"}, headers=headers),
    ):
        assert r.status_code == 401 and "turned off" in r.json()["detail"], r.text
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_revoked_token_stops_at_once(client: httpx.AsyncClient, db: Database) -> None:
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, "Revocable")
        await domain_service.add_domain(session, ws, f"{ws.key}.test", operator_verified=True)
        await scim_settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
        issued = await token_service.create_token(session, ws)
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert (await client.get(f"/scim/v2/{ws.key}/Users", headers=headers)).status_code == 200
    async with db.writing() as session:
        assert await token_service.revoke_token(session, ws, issued.id)
    assert (await client.get(f"/scim/v2/{ws.key}/Users", headers=headers)).status_code == 401


async def test_discovery(client: httpx.AsyncClient, tenant: Tenant) -> None:
    h = tenant.headers
    spc = (await client.get(f"{tenant.base}/ServiceProviderConfig", headers=h)).json()
    assert spc["patch"]["supported"] is True and spc["filter"]["supported"] is True
    assert spc["etag"]["supported"] is True and spc["sort"]["supported"] is True
    assert spc["pagination"]["cursor"] is True
    rts = (await client.get(f"{tenant.base}/ResourceTypes", headers=h)).json()
    assert [rt["id"] for rt in rts["Resources"]] == ["User"]
    assert (await client.get(f"{tenant.base}/ResourceTypes/User", headers=h)).json()["endpoint"] == "/Users"
    schemas = (await client.get(f"{tenant.base}/Schemas", headers=h)).json()
    ids = [s["id"] for s in schemas["Resources"]]
    assert "urn:ietf:params:scim:schemas:core:2.0:User" in ids
    assert "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" in ids
    one = await client.get(f"{tenant.base}/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", headers=h)
    assert one.status_code == 200 and one.json()["name"] == "User"
    assert (await client.get(f"{tenant.base}/Schemas/nope", headers=h)).status_code == 404
    r = await client.get(f"{tenant.base}/Groups", headers=h)
    assert r.status_code == 404 and r.json()["status"] == "404"
