"""Microsoft Entra's grant: client credentials, with client_id/client_secret in the form body."""

from __future__ import annotations

import uuid

import httpx
import pytest
from authlib.integrations.httpx_client import OAuthError

from provisio.db.engine import Database
from provisio.domain.scim_methods import ScimMethod
from tests.oauth.conftest import OAuthClientFactory
from tests.oauth.helpers import expire_access_tokens, make_oauth_tenant

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


async def test_entra_client_credentials_flow(
    db: Database, client: httpx.AsyncClient, oauth_client: OAuthClientFactory
) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    # Entra posts grant_type, client_id and client_secret in the body (client_secret_post).
    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
    )
    assert r.status_code == 200, r.text
    token = r.json()
    assert token["token_type"].lower() == "bearer" and token["expires_in"] == 3600
    assert "refresh_token" not in token
    headers = {"Authorization": f"Bearer {token['access_token']}"}

    # Test Connection: a filter on a random value, answered with 200 and an empty list.
    r = await client.get(
        f"{tenant.scim_base}/Users",
        params={"filter": f'userName eq "{uuid.uuid4()}"'},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["totalResults"] == 0 and r.json()["schemas"] == [LIST]

    # Entra appends ?aadOptscim062020 to the Tenant URL.
    r = await client.post(
        f"{tenant.scim_base}/Users?aadOptscim062020",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"grace-{uuid.uuid4().hex[:6]}@acme.example",
            "active": True,
            "externalId": "e-1",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text

    # When the token expires Entra simply asks for a new one (Authlib's client here, client_secret_post).
    await expire_access_tokens(db, tenant.id)
    assert (await client.get(f"{tenant.scim_base}/Users", headers=headers)).status_code == 401
    entra = oauth_client(
        tenant.client_id, tenant.client_secret, token_endpoint_auth_method="client_secret_post"
    )
    fresh = await entra.fetch_token("/oauth/token", grant_type="client_credentials")
    r = await client.get(
        f"{tenant.scim_base}/Users", headers={"Authorization": f"Bearer {fresh['access_token']}"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize("scope", [None, "scim", "https://graph.microsoft.com/.default"])
async def test_client_credentials_with_basic_auth_and_any_scope(
    db: Database, oauth_client: OAuthClientFactory, scope: str | None
) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    entra = oauth_client(tenant.client_id, tenant.client_secret, scope=scope)
    token = await entra.fetch_token("/oauth/token", grant_type="client_credentials")
    assert token["scope"] == "scim"


async def test_client_credentials_client_cannot_authorize(db: Database, client: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    r = await client.get(
        f"/oauth/{tenant.key}/authorize", params={"response_type": "code", "client_id": tenant.client_id}
    )
    assert r.status_code == 400  # no registered redirect URI to send the error to


async def test_wrong_secret_in_body(db: Database, oauth_client: OAuthClientFactory) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    entra = oauth_client(tenant.client_id, "pvcs_wrong", token_endpoint_auth_method="client_secret_post")
    with pytest.raises(OAuthError) as err:
        await entra.fetch_token("/oauth/token", grant_type="client_credentials")
    assert err.value.error == "invalid_client"
