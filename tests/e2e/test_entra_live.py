"""Entra's Client Credentials flow over real HTTP against a live server, with Authlib's OAuth client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain.scim_methods import ScimMethod
from tests.live_server import LiveServer, live_server
from tests.oauth.helpers import OAuthTenant, make_oauth_tenant


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, OAuthTenant]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('entra') / 'provisio.db'}"
    upgrade(url)

    async def seed() -> OAuthTenant:
        db = Database.from_url(url)
        try:
            return await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
        finally:
            await db.dispose()

    tenant = asyncio.run(seed())
    with live_server(url) as live:
        yield live, tenant


def test_entra_over_http(server: tuple[LiveServer, OAuthTenant], monkeypatch: pytest.MonkeyPatch) -> None:
    live, tenant = server
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # http://127.0.0.1
    with OAuth2Client(
        tenant.client_id, tenant.client_secret, token_endpoint_auth_method="client_secret_post"
    ) as entra:
        token = entra.fetch_token(f"{live.url}/oauth/token", grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer" and "refresh_token" not in token
        probe = entra.get(
            live.tenant_url(tenant.key) + "/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'}
        )
        assert probe.status_code == 200 and probe.json()["totalResults"] == 0
        listed = entra.get(live.tenant_url(tenant.key) + "/Users?aadOptscim062020")
        assert listed.status_code == 200
    # Without the token, nothing.
    assert httpx.get(live.tenant_url(tenant.key) + "/Users").status_code == 401
