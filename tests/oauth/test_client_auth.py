"""Client authentication at the token and revocation endpoints: one method per request (RFC 6749 §2.3),
and the same answer for an unknown client ID as for a wrong secret."""

from __future__ import annotations

import httpx
import pytest

from provisio.db.engine import Database
from tests.oauth.helpers import OAuthTenant, grant_rows, make_oauth_tenant, seed_grants

ENDPOINTS = ["/oauth/token", "/oauth/revoke"]


@pytest.fixture
async def tenant(db: Database) -> OAuthTenant:
    return await make_oauth_tenant(db)


def _body(endpoint: str, token: str) -> dict[str, str]:
    if endpoint == "/oauth/token":
        return {"grant_type": "refresh_token", "refresh_token": token}
    return {"token": token}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("basic_secret", ["pvcs_wrong", "right"])
async def test_basic_and_a_body_secret_together_are_refused(
    db: Database, client: httpx.AsyncClient, tenant: OAuthTenant, endpoint: str, basic_secret: str
) -> None:
    grants = await seed_grants(db, tenant)
    before = await grant_rows(db, tenant.id)
    secret = tenant.client_secret if basic_secret == "right" else basic_secret
    for extra in (
        {"client_secret": tenant.client_secret},
        {"client_id": tenant.client_id, "client_secret": tenant.client_secret},
    ):
        r = await client.post(
            endpoint, data=_body(endpoint, grants.refresh_token) | extra, auth=(tenant.client_id, secret)
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_request"
        assert "one client authentication method" in r.json()["error_description"]
    assert await grant_rows(db, tenant.id) == before  # nothing refreshed, nothing revoked
    # Either method alone works.
    alone = await client.post(
        endpoint, data=_body(endpoint, grants.refresh_token), auth=(tenant.client_id, tenant.client_secret)
    )
    assert alone.status_code == 200, alone.text


async def test_a_matching_client_id_in_the_body_goes_with_basic(
    db: Database, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    grants = await seed_grants(db, tenant)
    r = await client.post(
        "/oauth/token",
        data=_body("/oauth/token", grants.refresh_token) | {"client_id": tenant.client_id},
        auth=(tenant.client_id, tenant.client_secret),
    )
    assert r.status_code == 200, r.text


async def _attempts(
    client: httpx.AsyncClient, endpoint: str, client_id: str, secret: str
) -> list[httpx.Response]:
    data = _body(endpoint, "pvr_whatever")
    return [
        await client.post(endpoint, data=data, auth=(client_id, secret)),
        await client.post(endpoint, data=data | {"client_id": client_id, "client_secret": secret}),
    ]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_unknown_client_and_wrong_secret_get_the_same_answer(
    db: Database, client: httpx.AsyncClient, tenant: OAuthTenant, endpoint: str
) -> None:
    unknown = await _attempts(client, endpoint, "pvc_" + "0" * 32, "pvcs_" + "0" * 43)
    wrong = await _attempts(client, endpoint, tenant.client_id, "pvcs_" + "0" * 43)
    for attempts in (unknown, wrong):
        for r in attempts:
            assert r.status_code == 401, r.text
            assert r.json() == {
                "error": "invalid_client",
                "error_description": "Client authentication failed.",
            }
            assert r.headers["www-authenticate"].startswith('Basic realm="OAuth", error="invalid_client"')
    assert [(r.status_code, r.text, r.headers["www-authenticate"]) for r in unknown] == [
        (r.status_code, r.text, r.headers["www-authenticate"]) for r in wrong
    ]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_no_credentials_is_invalid_client(
    client: httpx.AsyncClient, tenant: OAuthTenant, endpoint: str
) -> None:
    for data in ({}, {"client_id": tenant.client_id}, {"client_secret": tenant.client_secret}):
        r = await client.post(endpoint, data=_body(endpoint, "pvr_x") | data)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
        assert "www-authenticate" in r.headers
