"""Okta's grant (Authorization Code) against the authorization server, with Authlib's OAuth client."""

from __future__ import annotations

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuthError

from provisio.db.engine import Database
from tests.oauth.conftest import OAuthClientFactory
from tests.oauth.helpers import (
    OKTA_CALLBACK,
    consent,
    expire_access_tokens,
    make_admin,
    make_oauth_tenant,
    okta_user,
    redirect_params,
    sign_in,
)

TOKEN_URL = "/oauth/token"


async def scim_status(client: httpx.AsyncClient, base: str, access_token: str) -> int:
    r = await client.get(f"{base}/Users", headers={"Authorization": f"Bearer {access_token}"})
    return r.status_code


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_okta_flow_end_to_end(
    db: Database,
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    oauth_client: OAuthClientFactory,
    auth_method: str,
) -> None:
    tenant = await make_oauth_tenant(db)
    okta = oauth_client(
        tenant.client_id,
        tenant.client_secret,
        redirect_uri=OKTA_CALLBACK,
        token_endpoint_auth_method=auth_method,
    )
    url, state = okta.create_authorization_url(f"http://provisio.test{tenant.authorization_path}")

    # Not signed in: the browser is sent to the sign-in page and comes back to the same request.
    r = await browser.get(url)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=%2Foauth%2F")
    r = await sign_in(browser, tenant.admin_email, next_path=url.removeprefix("http://provisio.test"))
    assert r.status_code == 303
    page = await browser.get(r.headers["location"])
    assert page.status_code == 200
    assert tenant.name in page.text and tenant.client_id in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    params = redirect_params(await consent(browser, url))
    assert params["state"] == state
    assert set(params) == {"code", "state"}

    token = await okta.fetch_token(TOKEN_URL, code=params["code"], state=state)
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] == 3600
    assert token["scope"] == "scim"
    assert token["refresh_token"]

    r = await client.post(
        f"{tenant.scim_base}/Users",
        json=okta_user(f"ada-{auth_method}@acme.example"),
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert r.status_code == 201, r.text
    assert await scim_status(client, tenant.scim_base, token["access_token"]) == 200

    # The access token expires; Okta refreshes and carries on.
    await expire_access_tokens(db, tenant.id)
    r = await client.get(
        f"{tenant.scim_base}/Users", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    new = await okta.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
    assert new["refresh_token"] != token["refresh_token"]  # rotated
    assert await scim_status(client, tenant.scim_base, new["access_token"]) == 200


async def test_token_response_headers_and_shape(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    url = f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}&state=s1"
    code = redirect_params(await consent(browser, url))["code"]
    r = await client.post(
        TOKEN_URL,
        data={"grant_type": "authorization_code", "code": code},
        auth=(tenant.client_id, tenant.client_secret),
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"].startswith("application/json")


async def test_pkce_s256_enforced_when_sent(
    db: Database, browser: httpx.AsyncClient, oauth_client: OAuthClientFactory
) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    okta = oauth_client(
        tenant.client_id, tenant.client_secret, redirect_uri=OKTA_CALLBACK, code_challenge_method="S256"
    )
    verifier = generate_token(48)
    url, _state = okta.create_authorization_url(
        f"http://provisio.test{tenant.authorization_path}", code_verifier=verifier
    )
    code = redirect_params(await consent(browser, url))["code"]
    with pytest.raises(OAuthError) as wrong:
        await okta.fetch_token(TOKEN_URL, code=code, code_verifier=generate_token(48))
    assert wrong.value.error == "invalid_grant"

    url, _ = okta.create_authorization_url(
        f"http://provisio.test{tenant.authorization_path}", code_verifier=verifier
    )
    code = redirect_params(await consent(browser, url))["code"]
    with pytest.raises(OAuthError) as missing:
        await okta.fetch_token(TOKEN_URL, code=code)  # challenge sent, verifier not
    assert missing.value.error == "invalid_request"

    url, _ = okta.create_authorization_url(
        f"http://provisio.test{tenant.authorization_path}", code_verifier=verifier
    )
    code = redirect_params(await consent(browser, url))["code"]
    token = await okta.fetch_token(TOKEN_URL, code=code, code_verifier=verifier)
    assert token["access_token"]


async def test_plain_pkce_is_refused_at_the_redirect(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    r = await browser.get(
        tenant.authorization_path,
        params={
            "response_type": "code",
            "client_id": tenant.client_id,
            "state": "xyz",
            "code_challenge": generate_token(48),
            "code_challenge_method": "plain",
        },
    )
    params = redirect_params(r)
    assert params == {
        "error": "invalid_request",
        "error_description": params["error_description"],
        "state": "xyz",
    }


async def test_code_reuse_is_refused_and_revokes_the_tokens(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, oauth_client: OAuthClientFactory
) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    okta = oauth_client(tenant.client_id, tenant.client_secret, redirect_uri=OKTA_CALLBACK)
    url, _ = okta.create_authorization_url(f"http://provisio.test{tenant.authorization_path}")
    code = redirect_params(await consent(browser, url))["code"]
    first = await okta.fetch_token(TOKEN_URL, code=code)
    assert await scim_status(client, tenant.scim_base, first["access_token"]) == 200
    with pytest.raises(OAuthError) as reuse:
        await okta.fetch_token(TOKEN_URL, code=code)
    assert reuse.value.error == "invalid_grant"
    assert await scim_status(client, tenant.scim_base, first["access_token"]) == 401
    with pytest.raises(OAuthError):
        await okta.refresh_token(TOKEN_URL, refresh_token=first["refresh_token"])


async def test_code_is_bound_to_its_client_and_redirect_uri(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    second_uri = "https://system-admin.okta.com/admin/app/cpc/other_app/oauth/callback"
    tenant = await make_oauth_tenant(db, redirect_uris=(OKTA_CALLBACK, second_uri))
    other = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    url = (
        f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}"
        f"&redirect_uri={OKTA_CALLBACK}"
    )
    code = redirect_params(await consent(browser, url))["code"]
    # Another client cannot redeem it...
    r = await client.post(
        TOKEN_URL,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": OKTA_CALLBACK},
        auth=(other.client_id, other.client_secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # ...nor can its own client with a different redirect URI.
    r = await client.post(
        TOKEN_URL,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": second_uri},
        auth=(tenant.client_id, tenant.client_secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_expired_code_is_refused(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from provisio.db.models import OAuthAuthorizationCode, utcnow

    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    code = redirect_params(
        await consent(browser, f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}")
    )["code"]
    async with db.writing() as session:
        await session.execute(
            update(OAuthAuthorizationCode)
            .where(OAuthAuthorizationCode.workspace_id == tenant.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = await client.post(
        TOKEN_URL,
        data={"grant_type": "authorization_code", "code": code},
        auth=(tenant.client_id, tenant.client_secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_unregistered_redirect_uri_is_never_redirected_to(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    for params in (
        {"response_type": "code", "client_id": tenant.client_id, "redirect_uri": "https://evil.example/cb"},
        {"response_type": "code", "client_id": "pvc_unknown", "redirect_uri": OKTA_CALLBACK},
        {"response_type": "code", "redirect_uri": OKTA_CALLBACK},
    ):
        r = await browser.get(tenant.authorization_path, params=params)
        assert r.status_code == 400, params
        assert "location" not in r.headers
        assert "cannot be accepted" in r.text


async def test_unsupported_response_type_goes_back_with_an_error(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    r = await browser.get(
        tenant.authorization_path,
        params={"response_type": "token", "client_id": tenant.client_id, "state": "abc"},
    )
    params = redirect_params(r)
    assert params["error"] == "unsupported_response_type" and params["state"] == "abc"
    assert r.headers["location"].startswith(OKTA_CALLBACK)


async def test_client_id_of_another_workspace_on_this_authorization_url(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    other = await make_oauth_tenant(db)
    r = await browser.get(
        tenant.authorization_path, params={"response_type": "code", "client_id": other.client_id}
    )
    assert r.status_code == 400
    assert "another workspace" in r.text


async def test_deny_sends_access_denied(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    r = await consent(
        browser,
        f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}&state=st",
        "deny",
    )
    params = redirect_params(r)
    assert params["error"] == "access_denied" and params["state"] == "st"
    assert "code" not in params


async def test_non_admin_is_refused_on_the_consent_page(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    outsider = await make_admin(db)
    await sign_in(browser, outsider)
    url = f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}&state=st"
    r = await browser.get(url)
    assert r.status_code == 403
    assert "Only an admin of" in r.text and outsider in r.text
    assert "Allow access" not in r.text
    # Posting the decision directly is refused too, and nothing goes to the IdP.
    from tests.oauth.helpers import csrf_token

    r = await browser.post(url, data={"csrf_token": csrf_token(r.text), "decision": "allow"})
    assert r.status_code == 403
    assert "location" not in r.headers


async def test_consent_post_needs_csrf_token(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    url = f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}"
    r = await browser.post(url, data={"decision": "allow"})
    assert r.status_code == 403
    assert "location" not in r.headers


async def test_second_admin_of_the_workspace_may_consent(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    colleague = await make_admin(db, tenant.key)
    await sign_in(browser, colleague)
    r = await consent(browser, f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}")
    assert "code" in redirect_params(r)


async def test_generic_authorization_endpoint_from_metadata(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    r = await consent(browser, f"/oauth/authorize?response_type=code&client_id={tenant.client_id}")
    assert "code" in redirect_params(r)
