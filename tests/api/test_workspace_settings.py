"""Seats, domains, admins and SCIM settings of a workspace through /api/v1, with the domain's rules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database
from provisio.domain import seats as seat_service
from tests.api.test_auth_and_problems import problem
from tests.conftest import BASE_URL, make_tenant
from tests.domain.dns_server import txt_server
from tests.domain.helpers import okta_user, unique_domain


async def new_workspace(
    client: httpx.AsyncClient, api: dict[str, str], **fields: object
) -> dict[str, object]:
    r = await client.post(
        "/api/v1/workspaces", headers=api, json={"name": f"Ws {uuid.uuid4().hex[:6]}", **fields}
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


async def test_seats_purchases_and_license(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    tenant = await make_tenant(db, seats=1)
    base = f"/api/v1/workspaces/{tenant.key}/seats"
    assert (await client.get(base, headers=api)).json() == {
        "purchased": 1,
        "used": 0,
        "free": 1,
        "auto_charge": False,
        "max_seats": None,
    }
    r = await client.post(
        f"{tenant.base}/Users", headers=tenant.headers, json=okta_user(f"a-{uuid.uuid4().hex[:6]}@x.test")
    )
    assert r.status_code == 201
    # No free seat, auto-charge off: SCIM refuses the next member.
    r = await client.post(
        f"{tenant.base}/Users", headers=tenant.headers, json=okta_user(f"b-{uuid.uuid4().hex[:6]}@x.test")
    )
    assert r.status_code == 403

    r = await client.post(f"{base}/purchases", headers=api, json={"quantity": 2, "reason": "Q3 order"})
    assert r.status_code == 201, r.text
    assert (r.json()["purchased"], r.json()["used"], r.json()["free"]) == (3, 1, 2)
    async with db.reading() as session:
        newest = (await seat_service.ledger(session, tenant.id))[0]
    assert (newest.delta, newest.actor, newest.reason) == (2, "API key host app", "Q3 order")
    problem(await client.post(f"{base}/purchases", headers=api, json={"quantity": 0}), 422)
    problem(await client.post(f"{base}/purchases", headers=api, json={"quantity": "many"}), 422)
    problem(await client.post(f"{base}/purchases", headers=api, json={"quantity": 1_000_000}), 400)

    r = await client.patch(base, headers=api, json={"auto_charge": True, "max_seats": 5})
    assert (r.json()["auto_charge"], r.json()["max_seats"]) == (True, 5)
    r = await client.patch(base, headers=api, json={"auto_charge": False})
    assert (r.json()["auto_charge"], r.json()["max_seats"]) == (False, 5)  # left out: kept
    r = await client.patch(base, headers=api, json={"max_seats": None})
    assert r.json()["max_seats"] is None
    problem(await client.patch(base, headers=api, json={"max_seats": -1}), 422)
    problem(await client.patch(base, headers=api, json={"purchased": 9}), 422)


@pytest.fixture
async def dns_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    """A client of an app whose DNS lookups go to a TXT server on 127.0.0.1."""
    with txt_server() as server:
        app = create_app(
            settings.model_copy(
                update={"dns_nameservers": "127.0.0.1", "dns_port": server.port, "dns_timeout_seconds": 2}
            )
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
                yield c, server


async def test_domains_and_the_scim_rule(
    dns_client: tuple[httpx.AsyncClient, object], api: dict[str, str]
) -> None:
    client, server = dns_client
    ws = await new_workspace(client, api)
    base = f"/api/v1/workspaces/{ws['key']}"

    # SCIM cannot be turned on without a verified domain.
    body = problem(await client.patch(f"{base}/scim", headers=api, json={"enabled": True}), 400)
    assert "verified domain" in str(body["detail"])

    by_dns = unique_domain()
    r = await client.post(f"{base}/domains", headers=api, json={"domain": by_dns.upper()})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert (entry["domain"], entry["verified"]) == (by_dns, False)
    problem(await client.post(f"{base}/domains", headers=api, json={"domain": by_dns}), 409)
    problem(await client.post(f"{base}/domains", headers=api, json={"domain": "not a domain"}), 400)

    r = await client.post(f"{base}/domains/{by_dns}/verify", headers=api)
    assert r.status_code == 200 and r.json()["verified"] is False and r.json()["last_error"]
    server.set_txt(by_dns, entry["txt_record"])  # type: ignore[attr-defined]
    r = await client.post(f"{base}/domains/{by_dns}/verify", headers=api)
    assert r.status_code == 200, r.text
    assert (r.json()["verified"], r.json()["verified_by"]) == (True, "dns")
    problem(await client.post(f"{base}/domains/other.test/verify", headers=api), 404)

    overridden = unique_domain()
    r = await client.post(f"{base}/domains", headers=api, json={"domain": overridden, "verified": True})
    assert (r.json()["verified"], r.json()["verified_by"]) == (True, "operator")
    # A domain verified here cannot be verified by another workspace.
    other = await new_workspace(client, api)
    r = await client.post(
        f"/api/v1/workspaces/{other['key']}/domains",
        headers=api,
        json={"domain": overridden, "verified": True},
    )
    problem(r, 409)

    listed = (await client.get(f"{base}/domains", headers=api)).json()
    assert sorted(d["domain"] for d in listed) == sorted([by_dns, overridden])

    r = await client.patch(
        f"{base}/scim", headers=api, json={"enabled": True, "method": "client_credentials"}
    )
    assert r.status_code == 200, r.text
    scim = r.json()
    assert (scim["enabled"], scim["method"]) == (True, "client_credentials")
    assert scim["tenant_url"] == f"{BASE_URL}/scim/v2/{ws['key']}"
    assert scim["connection"]["connected"] is False and scim["connection"]["last_success"] is None
    problem(await client.patch(f"{base}/scim", headers=api, json={"method": "password"}), 422)

    assert (await client.delete(f"{base}/domains/{by_dns}", headers=api)).status_code == 204
    # The last verified domain cannot go while SCIM is on.
    body = problem(await client.delete(f"{base}/domains/{overridden}", headers=api), 400)
    assert "only verified domain" in str(body["detail"])
    problem(await client.delete(f"{base}/domains/{by_dns}", headers=api), 404)
    assert (await client.get(f"{base}/scim", headers=api)).json()["enabled"] is True


async def test_scim_status_shows_the_connection(
    client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> None:
    tenant = await make_tenant(db)
    r = await client.get(
        f"{tenant.base}/Users", headers={**tenant.headers, "User-Agent": "Okta SCIM Client 1.0.0"}
    )
    assert r.status_code == 200
    scim = (await client.get(f"/api/v1/workspaces/{tenant.key}/scim", headers=api)).json()
    assert (scim["enabled"], scim["method"]) == (True, "bearer")
    assert scim["connection"]["connected"] is True
    assert scim["connection"]["idp"] == "Okta"
    r = await client.patch(f"/api/v1/workspaces/{tenant.key}/scim", headers=api, json={"enabled": False})
    assert r.json()["enabled"] is False
    assert (await client.get(f"{tenant.base}/Users", headers=tenant.headers)).status_code in (401, 403)


async def test_admins_and_the_last_admin_rule(client: httpx.AsyncClient, api: dict[str, str]) -> None:
    ws = await new_workspace(client, api)
    base = f"/api/v1/workspaces/{ws['key']}/admins"
    assert (await client.get(base, headers=api)).json() == []
    first, second = (f"{n}-{uuid.uuid4().hex[:6]}@example.com" for n in ("ann", "bob"))
    r = await client.post(base, headers=api, json={"email": first})
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["created"] is True
    assert added["set_password_url"].startswith(f"{BASE_URL}/console/set-password/")
    problem(await client.post(base, headers=api, json={"email": "no-at-sign"}), 400)
    assert (await client.post(base, headers=api, json={"email": second})).status_code == 201

    admins = (await client.get(base, headers=api)).json()
    assert [a["email"] for a in admins] == [first, second]
    assert {a["added_by"] for a in admins} == {"API key host app"}
    assert {a["password_set"] for a in admins} == {False}

    assert (await client.delete(f"{base}/{first.upper()}", headers=api)).status_code == 204
    body = problem(await client.delete(f"{base}/{second}", headers=api), 409)
    assert "last admin" in str(body["detail"])
    problem(await client.delete(f"{base}/{first}", headers=api), 404)
    assert [a["email"] for a in (await client.get(base, headers=api)).json()] == [second]


async def test_openapi_documents_the_api_and_nothing_else(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert all(p.startswith("/api/v1/") for p in paths), sorted(paths)
    expected = {
        "/api/v1/workspaces": {"get", "post"},
        "/api/v1/workspaces/{key}": {"get", "patch"},
        "/api/v1/workspaces/{key}/disable": {"post"},
        "/api/v1/workspaces/{key}/enable": {"post"},
        "/api/v1/workspaces/{key}/members": {"get"},
        "/api/v1/workspaces/{key}/members/{member_id}": {"get"},
        "/api/v1/workspaces/{key}/seats": {"get", "patch"},
        "/api/v1/workspaces/{key}/seats/purchases": {"post"},
        "/api/v1/workspaces/{key}/domains": {"get", "post"},
        "/api/v1/workspaces/{key}/domains/{domain}": {"delete"},
        "/api/v1/workspaces/{key}/domains/{domain}/verify": {"post"},
        "/api/v1/workspaces/{key}/admins": {"get", "post"},
        "/api/v1/workspaces/{key}/admins/{email}": {"delete"},
        "/api/v1/workspaces/{key}/scim": {"get", "patch"},
        "/api/v1/workspaces/{key}/portal-links": {"post"},
        "/api/v1/events": {"get"},
        "/api/v1/events/cursor": {"get"},
        "/api/v1/events/{event_id}": {"get"},
        "/api/v1/webhook-endpoints": {"get", "post"},
        "/api/v1/webhook-endpoints/{endpoint_id}": {"get", "patch", "delete"},
        "/api/v1/webhook-endpoints/{endpoint_id}/enable": {"post"},
        "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret": {"post"},
        "/api/v1/webhook-endpoints/{endpoint_id}/deliveries": {"get"},
        "/api/v1/webhook-endpoints/{endpoint_id}/replay": {"post"},
        "/api/v1/webhook-endpoints/{endpoint_id}/test": {"post"},
    }
    assert {p: set(ops) for p, ops in paths.items()} == expected
    for ops in paths.values():
        for op in ops.values():
            assert op["summary"] and op["security"]
            assert "application/problem+json" in op["responses"]["401"]["content"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["components"]["schemas"]["Workspace"]["properties"]["tenant_url"]["description"]
    docs = await client.get("/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
