"""Disabling a workspace through /api/v1: the workspace reads as disabled (and since when), the list
filters on it, every read still answers, every change is a 409 problem document until it is enabled
again, and disabling or enabling twice changes nothing. Other workspaces are not touched."""

from __future__ import annotations

from typing import Any

import httpx

from provisio.db.engine import Database
from tests.api.test_auth_and_problems import problem
from tests.conftest import make_tenant
from tests.domain.helpers import okta_user


async def _keys(client: httpx.AsyncClient, api: dict[str, str], disabled: str) -> set[str]:
    keys: set[str] = set()
    after = ""
    while True:
        params = {"disabled": disabled, "after": after, "limit": "200"}
        r = await client.get("/api/v1/workspaces", headers=api, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert all(w["disabled"] is (disabled == "true") for w in page["items"])
        keys |= {w["key"] for w in page["items"]}
        if page["next_cursor"] is None:
            return keys
        after = page["next_cursor"]


async def _reads(client: httpx.AsyncClient, api: dict[str, str], key: str) -> dict[str, Any]:
    base = f"/api/v1/workspaces/{key}"
    found: dict[str, Any] = {}
    for part in ("", "/members", "/seats", "/domains", "/admins", "/scim"):
        r = await client.get(base + part, headers=api)
        assert r.status_code == 200, (part, r.text)
        found[part] = r.json()
    found["/scim"].pop("connection")  # the refusals themselves show there
    return found


async def test_disable_enable_and_what_a_disabled_workspace_refuses(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    tenant = await make_tenant(db)
    neighbour = await make_tenant(db, "Globex")
    base = f"/api/v1/workspaces/{tenant.key}"
    ada = okta_user(f"ada@{tenant.key}.test")
    user = await client.post(f"{tenant.base}/Users", json=ada, headers=tenant.headers)
    assert user.status_code == 201, user.text
    added = await client.post(f"{base}/admins", headers=api, json={"email": "grace@acme.example"})
    assert added.status_code == 201, added.text
    r = await client.get(base, headers=api)
    assert (r.json()["disabled"], r.json()["disabled_at"]) == (False, None)

    r = await client.post(f"{base}/disable", headers=api)
    assert r.status_code == 200, r.text
    disabled = r.json()
    assert disabled["disabled"] is True and disabled["disabled_at"]
    assert disabled["scim_enabled"] is True  # kept, so that enabling restores it
    again = await client.post(f"{base}/disable", headers=api)
    assert again.status_code == 200 and again.json() == disabled  # even disabled_at stays as it was
    assert (await client.get(base, headers=api)).json() == disabled
    assert tenant.key in await _keys(client, api, "true")
    assert neighbour.key in await _keys(client, api, "false") - await _keys(client, api, "true")
    problem(await client.get("/api/v1/workspaces", headers=api, params={"disabled": "maybe"}), 422)

    reads = await _reads(client, api, tenant.key)
    assert [m["userName"] for m in reads["/members"]["items"]] == [f"ada@{tenant.key}.test"]
    assert reads["/scim"]["enabled"] is True
    domain = reads["/domains"][0]["domain"]
    changes = [
        ("PATCH", base, {"name": "Renamed"}),
        ("PATCH", base, {"allow_other_domains": False}),
        ("POST", f"{base}/seats/purchases", {"quantity": 2}),
        ("PATCH", f"{base}/seats", {"auto_charge": True}),
        ("POST", f"{base}/domains", {"domain": "another-example.test", "verified": True}),
        ("POST", f"{base}/domains/{domain}/verify", None),
        ("DELETE", f"{base}/domains/{domain}", None),
        ("POST", f"{base}/admins", {"email": "eve@acme.example"}),
        ("DELETE", f"{base}/admins/grace@acme.example", None),
        ("POST", f"{base}/portal-links", {"email": "eve@acme.example"}),
        ("PATCH", f"{base}/scim", {"enabled": False}),
        ("PATCH", f"{base}/scim", {"method": "client_credentials"}),
    ]
    for method, path, body in changes:
        refused = problem(await client.request(method, path, headers=api, json=body), 409)
        assert refused["type"] == "urn:provisio:problem:conflict", (method, path)
        assert refused["reason"] == "workspace_disabled", (method, path)
        assert "is disabled" in str(refused["detail"]), (method, path)
    assert await _reads(client, api, tenant.key) == reads  # nothing changed
    scim = await client.get(f"{tenant.base}/Users", headers=tenant.headers)
    assert scim.status_code == 403

    # The neighbour changes as ever.
    r = await client.patch(f"/api/v1/workspaces/{neighbour.key}", headers=api, json={"name": "Globex 2"})
    assert r.status_code == 200 and r.json()["disabled"] is False

    r = await client.post(f"{base}/enable", headers=api)
    assert r.status_code == 200, r.text
    enabled = r.json()
    assert (enabled["disabled"], enabled["disabled_at"], enabled["scim_enabled"]) == (False, None, True)
    assert (await client.post(f"{base}/enable", headers=api)).json() == enabled
    assert tenant.key not in await _keys(client, api, "true")
    assert (await client.patch(base, headers=api, json={"name": "Renamed"})).status_code == 200
    assert (await client.get(f"{tenant.base}/Users", headers=tenant.headers)).status_code == 200


async def test_disable_and_enable_an_unknown_workspace(
    client: httpx.AsyncClient, api: dict[str, str]
) -> None:
    for action in ("disable", "enable"):
        body = problem(await client.post(f"/api/v1/workspaces/no-such-key/{action}", headers=api), 404)
        assert "no-such-key" in str(body["detail"])
    problem(await client.post("/api/v1/workspaces/x/disable"), 401)
