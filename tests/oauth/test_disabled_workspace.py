"""A disabled workspace's OAuth clients get no token and no authorization code, in the protocol's own
terms (``unauthorized_client`` at the Token URL, ``access_denied`` sent back to the identity provider
by the authorization endpoint), while nothing they hold is used up or revoked: once the workspace is
enabled the same secret, code and refresh token work again."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select

from provisio.db.engine import Database
from provisio.db.models import OAuthAuthorizationCode
from provisio.domain.scim_methods import ScimMethod
from tests.disabling import disable, enable
from tests.oauth.helpers import (
    OKTA_CALLBACK,
    csrf_token,
    grant_rows,
    make_oauth_tenant,
    redirect_params,
    seed_grants,
    sign_in,
)

TOKEN_URL = "/oauth/token"


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "unauthorized_client"
    assert "workspace is disabled" in body["error_description"]
    assert "client credentials are valid" in body["error_description"]
    assert r.headers["cache-control"] == "no-store"


async def test_client_credentials_get_no_token_while_disabled(
    db: Database, client: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    neighbour = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    grant = {"grant_type": "client_credentials"}
    before = await client.post(TOKEN_URL, data=grant, auth=(tenant.client_id, tenant.client_secret))
    assert before.status_code == 200, before.text
    access = {"Authorization": f"Bearer {before.json()['access_token']}"}

    await disable(db, tenant.key)
    _refused(await client.post(TOKEN_URL, data=grant, auth=(tenant.client_id, tenant.client_secret)))
    # Credentials in the body (Entra's way) are refused alike.
    body = grant | {"client_id": tenant.client_id, "client_secret": tenant.client_secret}
    _refused(await client.post(TOKEN_URL, data=body))
    # A wrong secret is told only that: whether the workspace is disabled is for its own client.
    wrong = await client.post(TOKEN_URL, data=grant, auth=(tenant.client_id, "pvcs_wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert "disabled" not in wrong.text
    # The token issued before is refused by SCIM, as disabled rather than as a bad credential.
    scim = await client.get(f"{tenant.scim_base}/Users", headers=access)
    assert scim.status_code == 403 and "disabled" in scim.json()["detail"]
    # Another workspace's client is served as ever.
    other = await client.post(TOKEN_URL, data=grant, auth=(neighbour.client_id, neighbour.client_secret))
    assert other.status_code == 200, other.text

    await enable(db, tenant.key)
    after = await client.post(TOKEN_URL, data=grant, auth=(tenant.client_id, tenant.client_secret))
    assert after.status_code == 200, after.text
    assert (await client.get(f"{tenant.scim_base}/Users", headers=access)).status_code == 200


async def test_codes_and_refresh_tokens_are_kept_for_when_it_is_enabled(
    db: Database, client: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    grants = await seed_grants(db, tenant)
    spare = await seed_grants(db, tenant)
    auth = (tenant.client_id, tenant.client_secret)
    refresh = {"grant_type": "refresh_token", "refresh_token": grants.refresh_token}
    exchange = {"grant_type": "authorization_code", "code": grants.code}
    before = await grant_rows(db, tenant.id)

    await disable(db, tenant.key)
    _refused(await client.post(TOKEN_URL, data=refresh, auth=auth))
    _refused(await client.post(TOKEN_URL, data=exchange, auth=auth))
    assert await grant_rows(db, tenant.id) == before  # nothing used, rotated or revoked
    # Revoking only takes access away: a disabled workspace's client may still do it.
    revoked = await client.post("/oauth/revoke", data={"token": spare.access_token}, auth=auth)
    assert revoked.status_code == 200, revoked.text
    assert await grant_rows(db, tenant.id) != before

    await enable(db, tenant.key)
    r = await client.post(TOKEN_URL, data=refresh, auth=auth)
    assert r.status_code == 200 and r.json()["refresh_token"] != grants.refresh_token, r.text
    assert (await client.post(TOKEN_URL, data=exchange, auth=auth)).status_code == 200
    spent = {"grant_type": "refresh_token", "refresh_token": spare.refresh_token}
    assert (await client.post(TOKEN_URL, data=spent, auth=auth)).json()["error"] == "invalid_grant"


async def _codes(db: Database, workspace_id: str) -> int:
    async with db.reading() as session:
        query = select(func.count()).where(OAuthAuthorizationCode.workspace_id == workspace_id)
        return int(await session.scalar(query) or 0)


async def test_the_authorization_endpoint_sends_access_denied_to_the_identity_provider(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    query = {"response_type": "code", "client_id": tenant.client_id, "redirect_uri": OKTA_CALLBACK}
    url = f"{tenant.authorization_path}?{urlencode(query | {'state': 'xyz'})}"
    await sign_in(browser, tenant.admin_email)
    page = await browser.get(url)
    assert page.status_code == 200 and "Allow access" in page.text  # opened before the workspace is disabled

    await disable(db, tenant.key)
    answered = await browser.post(url, data={"csrf_token": csrf_token(page.text), "decision": "allow"})
    params = redirect_params(answered)
    assert answered.headers["location"].startswith(OKTA_CALLBACK + "?")
    assert params["error"] == "access_denied" and params["state"] == "xyz"
    assert "workspace is disabled" in params["error_description"]
    assert "code" not in params and await _codes(db, tenant.id) == 0
    # Opening it again goes straight back with the refusal, without a consent page.
    for path in (url, f"/oauth/authorize?{urlencode(query)}"):
        again = await browser.get(path)
        assert redirect_params(again)["error"] == "access_denied" and "Allow access" not in again.text

    await enable(db, tenant.key)
    page = await browser.get(url)
    assert page.status_code == 200 and "Allow access" in page.text
    answered = await browser.post(url, data={"csrf_token": csrf_token(page.text), "decision": "allow"})
    assert "code" in redirect_params(answered) and await _codes(db, tenant.id) == 1
