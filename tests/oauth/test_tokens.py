"""Token lifecycle: refresh rotation and its grace period, revocation, workspace binding, and the
settings that stop credentials at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from provisio.db.engine import Database
from provisio.domain import scim_credentials as credential_service
from provisio.domain import scim_settings as settings_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from provisio.domain.scim_methods import ScimMethod
from tests.oauth.helpers import (
    OAuthTenant,
    age_refresh_rotation,
    consent,
    make_oauth_tenant,
    redirect_params,
    sign_in,
)

TOKEN_URL = "/oauth/token"


async def authorize_and_exchange(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> dict[str, Any]:
    await sign_in(browser, tenant.admin_email)
    code = redirect_params(
        await consent(browser, f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}")
    )["code"]
    r = await client.post(
        TOKEN_URL,
        data={"grant_type": "authorization_code", "code": code},
        auth=(tenant.client_id, tenant.client_secret),
    )
    assert r.status_code == 200, r.text
    token: dict[str, Any] = r.json()
    return token


async def refresh(client: httpx.AsyncClient, tenant: OAuthTenant, refresh_token: str) -> httpx.Response:
    return await client.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(tenant.client_id, tenant.client_secret),
    )


async def scim(client: httpx.AsyncClient, tenant: OAuthTenant, access_token: str) -> int:
    r = await client.get(f"{tenant.scim_base}/Users", headers={"Authorization": f"Bearer {access_token}"})
    return r.status_code


@pytest.fixture
async def tenant(db: Database) -> OAuthTenant:
    return await make_oauth_tenant(db)


async def test_lost_refresh_response_is_retried_within_grace(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    first = await authorize_and_exchange(browser, client, tenant)
    lost = await refresh(client, tenant, first["refresh_token"])  # the response never reaches Okta
    assert lost.status_code == 200
    retry = await refresh(client, tenant, first["refresh_token"])
    assert retry.status_code == 200, retry.text
    # The successor Okta never saw is revoked; the retry's tokens work.
    assert await scim(client, tenant, lost.json()["access_token"]) == 401
    assert await scim(client, tenant, retry.json()["access_token"]) == 200
    after = await refresh(client, tenant, retry.json()["refresh_token"])
    assert after.status_code == 200
    # Whoever presents the superseded successor later held a copy: that ends the whole family
    # (test_refresh_theft.py).
    assert (await refresh(client, tenant, lost.json()["refresh_token"])).status_code == 400
    assert await scim(client, tenant, after.json()["access_token"]) == 401


async def test_refresh_reuse_after_grace_revokes_the_family(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    first = await authorize_and_exchange(browser, client, tenant)
    second = (await refresh(client, tenant, first["refresh_token"])).json()
    await age_refresh_rotation(db, first["refresh_token"], seconds=3600)
    replay = await refresh(client, tenant, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert await scim(client, tenant, second["access_token"]) == 401
    assert (await refresh(client, tenant, second["refresh_token"])).status_code == 400


async def test_refresh_reuse_after_successor_was_used_revokes_the_family(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    first = await authorize_and_exchange(browser, client, tenant)
    second = (await refresh(client, tenant, first["refresh_token"])).json()
    third = (await refresh(client, tenant, second["refresh_token"])).json()
    assert (await refresh(client, tenant, first["refresh_token"])).status_code == 400
    assert await scim(client, tenant, third["access_token"]) == 401


async def test_refresh_token_of_another_client_is_refused(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    token = await authorize_and_exchange(browser, client, tenant)
    other = await make_oauth_tenant(db)
    r = await client.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(other.client_id, other.client_secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert (await refresh(client, tenant, token["refresh_token"])).status_code == 200


async def test_token_of_one_workspace_is_refused_on_another(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    token = await authorize_and_exchange(browser, client, tenant)
    other = await make_oauth_tenant(db)
    r = await client.get(
        f"{other.scim_base}/Users", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer realm="provisio SCIM"')


@pytest.mark.parametrize("hint", [None, "access_token"])
async def test_revoking_an_access_token(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant, hint: str | None
) -> None:
    token = await authorize_and_exchange(browser, client, tenant)
    data = {"token": token["access_token"]} | ({"token_type_hint": hint} if hint else {})
    r = await client.post("/oauth/revoke", data=data, auth=(tenant.client_id, tenant.client_secret))
    assert r.status_code == 200
    assert await scim(client, tenant, token["access_token"]) == 401


async def test_revoking_a_refresh_token_ends_the_grant(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    token = await authorize_and_exchange(browser, client, tenant)
    r = await client.post(
        "/oauth/revoke",
        data={
            "token": token["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
    )
    assert r.status_code == 200
    assert await scim(client, tenant, token["access_token"]) == 401
    assert (await refresh(client, tenant, token["refresh_token"])).status_code == 400
    # Unknown tokens are "revoked" too (RFC 7009 §2.2), without telling anything.
    r = await client.post(
        "/oauth/revoke", data={"token": "nope"}, auth=(tenant.client_id, tenant.client_secret)
    )
    assert r.status_code == 200


async def test_revocation_needs_client_authentication(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    token = await authorize_and_exchange(browser, client, tenant)
    r = await client.post("/oauth/revoke", data={"token": token["access_token"]})
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    assert await scim(client, tenant, token["access_token"]) == 200


async def test_turning_scim_off_stops_tokens_and_the_token_endpoint(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    token = await authorize_and_exchange(browser, client, tenant)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await settings_service.set_enabled(session, ws, False, by=CLI_ACTOR)
    assert await scim(client, tenant, token["access_token"]) == 401
    r = await refresh(client, tenant, token["refresh_token"])
    assert r.status_code == 401 and "turned off" in r.json()["error_description"]
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
    assert await scim(client, tenant, token["access_token"]) == 200


async def test_regenerating_credentials_stops_old_secret_and_tokens(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    token = await authorize_and_exchange(browser, client, tenant)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        issued = await credential_service.generate_credentials(session, ws)
    assert issued.client_id == tenant.client_id and issued.client_secret != tenant.client_secret
    assert await scim(client, tenant, token["access_token"]) == 401
    r = await refresh(client, tenant, token["refresh_token"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_switching_method_stops_tokens_and_legacy_tokens_need_bearer_method(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    token = await authorize_and_exchange(browser, client, tenant)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await settings_service.set_method(session, ws, ScimMethod.BEARER)
        legacy = await credential_service.generate_credentials(session, ws)
    assert await scim(client, tenant, token["access_token"]) == 401
    assert legacy.token and await scim(client, tenant, legacy.token) == 200
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await settings_service.set_method(session, ws, ScimMethod.CLIENT_CREDENTIALS)
    assert await scim(client, tenant, legacy.token) == 401


async def test_secrets_and_tokens_are_stored_only_as_hashes(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    from sqlalchemy import text

    token = await authorize_and_exchange(browser, client, tenant)
    secrets = [tenant.client_secret, token["access_token"], token["refresh_token"]]
    async with db.reading() as session:
        for table in ("oauth_clients", "oauth_tokens", "oauth_authorization_codes"):
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
            dump = repr(rows)
            assert not any(s in dump for s in secrets), table


async def test_unsupported_grant_and_bad_client(client: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    r = await client.post(
        TOKEN_URL, data={"grant_type": "password"}, auth=(tenant.client_id, tenant.client_secret)
    )
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = await client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(tenant.client_id, "wrong")
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].lower().startswith("basic")
    # An Authorization Code client may not use the client credentials grant.
    r = await client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(tenant.client_id, tenant.client_secret)
    )
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
