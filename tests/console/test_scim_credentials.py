"""Generating and regenerating SCIM credentials in the console: POST-redirect-GET with the secret shown
by exactly one page view, a confirmation step before anything in use stops, and the rotation window that
keeps a replaced client secret working for real OAuth token requests until it ends."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text, update

from provisio.db.engine import Database
from provisio.db.models import CredentialReveal, OAuthClient, ScimToken, utcnow
from provisio.domain import workspaces as workspace_service
from provisio.domain.hashing import hash_secret
from provisio.domain.scim_methods import ScimMethod
from tests.console.pages import new_browser
from tests.oauth.helpers import OAuthTenant, csrf_token, make_oauth_tenant, sign_in

SECRET_RE = re.compile(r'id="client-secret" type="text" readonly value="([^"]+)"')
CLIENT_ID_RE = re.compile(r'id="client-id" type="text" readonly value="([^"]+)"')


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


async def entra_tenant(db: Database, browser: httpx.AsyncClient, *, credentials: bool) -> OAuthTenant:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS, credentials=credentials)
    assert (await sign_in(browser, tenant.admin_email)).status_code == 303
    return tenant


def page_path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/settings/advanced"


async def post(browser: httpx.AsyncClient, tenant: OAuthTenant, action: str, **data: str) -> httpx.Response:
    page = await browser.get(page_path(tenant))
    assert page.status_code == 200, page.text
    return await browser.post(
        f"{page_path(tenant)}/scim/{action}", data={"csrf_token": csrf_token(page.text), **data}
    )


async def live_client_row(db: Database, tenant: OAuthTenant) -> OAuthClient:
    async with db.reading() as session:
        return (
            await session.execute(
                select(OAuthClient).where(
                    OAuthClient.workspace_id == tenant.id, OAuthClient.revoked_at.is_(None)
                )
            )
        ).scalar_one()


async def token_request(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    """What Entra sends: the client credentials grant, client_id and client_secret in the body."""
    return await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


async def regenerate(
    browser: httpx.AsyncClient, tenant: OAuthTenant, window: str
) -> tuple[httpx.Response, str]:
    """Regenerate through the confirmation page; returns the landing page and the new secret."""
    confirm = await browser.get(f"{page_path(tenant)}/scim/credentials/confirm")
    assert confirm.status_code == 200
    r = await browser.post(
        f"{page_path(tenant)}/scim/credentials",
        data={"csrf_token": csrf_token(confirm.text), "confirm": "yes", "window": window},
    )
    assert r.status_code == 303
    landing = await browser.get(r.headers["location"])
    secret = SECRET_RE.search(landing.text)
    assert secret
    return landing, secret.group(1)


async def test_generate_redirects_and_the_secret_is_shown_once(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await entra_tenant(db, browser, credentials=False)
    r = await post(browser, tenant, "credentials")
    assert r.status_code == 303
    landing_url = r.headers["location"]
    assert landing_url == page_path(tenant) + "?notice=generated"  # no fragment: the page opens at the top
    cookie = browser.cookies.get("provisio_reveal")
    assert cookie

    # Before the redirect is followed the secret waits encrypted: nowhere in the database in plain.
    async with db.reading() as session:
        dump = repr((await session.execute(text("SELECT * FROM credential_reveals"))).all())
    row = await live_client_row(db, tenant)

    landing = await browser.get(landing_url)
    assert landing.status_code == 200 and landing.headers["cache-control"] == "no-store"
    secret, client_id = SECRET_RE.search(landing.text), CLIENT_ID_RE.search(landing.text)
    assert secret and client_id and client_id.group(1) == row.client_id
    assert secret.group(1) not in dump and row.secret_hash == hash_secret(secret.group(1))
    assert landing.text.count(secret.group(1)) == 1
    assert "Shown once" in landing.text
    # At the top of the page: before every settings card.
    assert landing.text.index('id="new-credentials"') < landing.text.index('id="scim-enabled"')

    # A reload (or back/forward to the same URL) issues nothing and shows nothing.
    for _ in range(2):
        again = await browser.get(landing_url)
        assert again.status_code == 200
        assert secret.group(1) not in again.text and 'id="new-credentials"' not in again.text
    after = await live_client_row(db, tenant)
    assert (after.id, after.client_id, after.secret_hash) == (row.id, row.client_id, row.secret_hash)

    # Replaying the reveal cookie after its one view finds nothing either.
    browser.cookies.set("provisio_reveal", cookie)
    replay = await browser.get(landing_url)
    assert secret.group(1) not in replay.text
    async with db.reading() as session:
        left = await session.execute(
            select(CredentialReveal.id).where(CredentialReveal.workspace_id == tenant.id)
        )
        assert left.first() is None


async def test_another_session_cannot_read_the_reveal(
    db: Database, app: object, browser: httpx.AsyncClient
) -> None:
    tenant = await entra_tenant(db, browser, credentials=False)
    r = await post(browser, tenant, "credentials")
    cookie = browser.cookies.get("provisio_reveal")
    assert r.status_code == 303 and cookie
    async with new_browser(app) as other:  # the same admin, signed in elsewhere, with the stolen cookie
        await sign_in(other, tenant.admin_email)
        other.cookies.set("provisio_reveal", cookie)
        stolen = await other.get(r.headers["location"])
        assert stolen.status_code == 200 and not SECRET_RE.search(stolen.text)
    assert SECRET_RE.search((await browser.get(r.headers["location"])).text)


async def test_regenerating_needs_confirmation(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    tenant = await entra_tenant(db, browser, credentials=True)
    before = await live_client_row(db, tenant)
    for data in ({}, {"confirm": "no"}, {"window": "24h"}):
        r = await post(browser, tenant, "credentials", **data)
        assert r.status_code == 303
        assert r.headers["location"] == page_path(tenant) + "/scim/credentials/confirm"
    after = await live_client_row(db, tenant)
    assert (after.client_id, after.secret_hash) == (before.client_id, before.secret_hash)
    assert after.previous_secret_hash is None
    assert (await token_request(client, tenant.client_id, tenant.client_secret)).status_code == 200

    confirm = await browser.get(f"{page_path(tenant)}/scim/credentials/confirm")
    assert confirm.status_code == 200
    assert "Microsoft Entra ID will stop provisioning until you paste the new client secret" in confirm.text
    assert 'name="confirm" value="yes"' in confirm.text and 'name="window" value="1h"' in confirm.text

    landing, secret = await regenerate(browser, tenant, "none")
    assert "Credentials regenerated" in landing.text
    after = await live_client_row(db, tenant)
    assert after.client_id == tenant.client_id and after.secret_hash == hash_secret(secret)
    assert (await token_request(client, tenant.client_id, tenant.client_secret)).status_code == 401
    assert (await token_request(client, tenant.client_id, secret)).status_code == 200


async def test_an_unknown_window_is_refused(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await entra_tenant(db, browser, credentials=True)
    before = await live_client_row(db, tenant)
    r = await post(browser, tenant, "credentials", confirm="yes", window="forever")
    assert r.status_code == 400 and "Unknown rotation window" in r.text
    after = await live_client_row(db, tenant)
    assert after.secret_hash == before.secret_hash


async def test_switching_method_needs_confirmation(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await entra_tenant(db, browser, credentials=True)
    r = await post(browser, tenant, "method", method="bearer")
    assert r.status_code == 303
    assert r.headers["location"] == page_path(tenant) + "/scim/method/confirm?method=bearer"
    async with db.reading() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
    assert ws.scim_auth_method == "client_credentials"
    assert (await live_client_row(db, tenant)).client_id == tenant.client_id

    confirm = await browser.get(r.headers["location"])
    assert confirm.status_code == 200
    assert "Microsoft Entra ID will stop provisioning" in confirm.text
    r = await browser.post(
        f"{page_path(tenant)}/scim/method",
        data={"csrf_token": csrf_token(confirm.text), "method": "bearer", "confirm": "yes"},
    )
    assert r.status_code == 303
    async with db.reading() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
    assert ws.scim_auth_method == "bearer"

    bad = await browser.get(f"{page_path(tenant)}/scim/method/confirm?method=kerberos")
    assert bad.status_code == 400 and "Unknown authentication method" in bad.text


async def test_rotation_window_keeps_the_old_secret_until_it_ends(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    tenant = await entra_tenant(db, browser, credentials=True)
    old = tenant.client_secret
    _, new = await regenerate(browser, tenant, "1h")
    assert new != old

    # Both secrets authenticate the client (the same client ID) while the window lasts.
    assert (await token_request(client, tenant.client_id, old)).status_code == 200
    assert (await token_request(client, tenant.client_id, new)).status_code == 200
    basic = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(tenant.client_id, old)
    )
    assert basic.status_code == 200

    # The page shows both, the old one masked, and when it stops.
    row = await live_client_row(db, tenant)
    assert row.previous_secret_expires_at is not None
    assert timedelta(minutes=59) < row.previous_secret_expires_at - utcnow() <= timedelta(hours=1)
    page = (await browser.get(page_path(tenant))).text
    assert old not in page and new not in page
    assert f"pvcs_••••••••{old[-4:]}" in page and f"pvcs_••••••••{new[-4:]}" in page
    assert row.previous_secret_expires_at.strftime("%Y-%m-%d %H:%M") + " UTC" in page
    assert "still accepted until" in page

    # A wrong secret gets what an unknown client gets, window or not.
    wrong = await token_request(client, tenant.client_id, "pvcs_wrong")
    unknown = await token_request(client, "pvc_nobody", old)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()

    # The window ends: the old secret is refused, the new one goes on.
    async with db.writing() as session:
        await session.execute(
            update(OAuthClient)
            .where(OAuthClient.id == row.id)
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )
    refused = await token_request(client, tenant.client_id, old)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert (await token_request(client, tenant.client_id, new)).status_code == 200
    assert "still accepted until" not in (await browser.get(page_path(tenant))).text


async def test_no_window_stops_the_old_secret_at_once(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    tenant = await entra_tenant(db, browser, credentials=True)
    token = await token_request(client, tenant.client_id, tenant.client_secret)
    access = token.json()["access_token"]
    _, new = await regenerate(browser, tenant, "none")
    assert (await token_request(client, tenant.client_id, tenant.client_secret)).status_code == 401
    scim = await client.get(f"{tenant.scim_base}/Users", headers={"Authorization": f"Bearer {access}"})
    assert scim.status_code == 401  # tokens issued with the old secret stop too
    assert (await token_request(client, tenant.client_id, new)).status_code == 200


TOKEN_RE = re.compile(r'id="bearer-token" type="text" readonly value="([^"]+)"')


async def test_bearer_token_rotation_window(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.BEARER, credentials=False)
    await sign_in(browser, tenant.admin_email)
    r = await post(browser, tenant, "credentials")
    first = TOKEN_RE.search((await browser.get(r.headers["location"])).text)
    assert r.status_code == 303 and first

    async def status(token: str) -> int:
        users = await client.get(f"{tenant.scim_base}/Users", headers={"Authorization": f"Bearer {token}"})
        return users.status_code

    assert (await post(browser, tenant, "credentials")).headers["location"].endswith("/confirm")
    confirm = await browser.get(f"{page_path(tenant)}/scim/credentials/confirm")
    assert "Your identity provider will stop provisioning until you paste the new token" in confirm.text
    r = await browser.post(
        f"{page_path(tenant)}/scim/credentials",
        data={"csrf_token": csrf_token(confirm.text), "confirm": "yes", "window": "24h"},
    )
    second = TOKEN_RE.search((await browser.get(r.headers["location"])).text)
    assert second and second.group(1) != first.group(1)
    assert await status(first.group(1)) == 200 and await status(second.group(1)) == 200
    assert "The previous token is still accepted until" in (await browser.get(page_path(tenant))).text

    async with db.writing() as session:
        await session.execute(
            update(ScimToken)
            .where(ScimToken.workspace_id == tenant.id, ScimToken.expires_at.is_not(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await status(first.group(1)) == 401 and await status(second.group(1)) == 200
    assert "previous token" not in (await browser.get(page_path(tenant))).text

    # Without a window the replaced token stops at once.
    _, third = await regenerate_token(browser, tenant)
    assert await status(second.group(1)) == 401 and await status(third) == 200


async def regenerate_token(browser: httpx.AsyncClient, tenant: OAuthTenant) -> tuple[httpx.Response, str]:
    confirm = await browser.get(f"{page_path(tenant)}/scim/credentials/confirm")
    r = await browser.post(
        f"{page_path(tenant)}/scim/credentials",
        data={"csrf_token": csrf_token(confirm.text), "confirm": "yes", "window": "none"},
    )
    landing = await browser.get(r.headers["location"])
    token = TOKEN_RE.search(landing.text)
    assert token
    return landing, token.group(1)


async def test_confirmation_names_okta_and_says_when_nothing_stops(
    db: Database, app: object, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.AUTHORIZATION_CODE)
    await sign_in(browser, tenant.admin_email)
    confirm = await browser.get(f"{page_path(tenant)}/scim/credentials/confirm")
    assert "Okta will stop provisioning until you paste the new client secret" in confirm.text
    method = await browser.get(f"{page_path(tenant)}/scim/method/confirm?method=client_credentials")
    assert "Okta will stop provisioning" in method.text

    fresh = await make_oauth_tenant(db, ScimMethod.AUTHORIZATION_CODE, credentials=False)
    async with new_browser(app) as other:
        await sign_in(other, fresh.admin_email)
        idle = await other.get(f"{page_path(fresh)}/scim/method/confirm?method=bearer")
        assert "nothing stops working" in idle.text and "will stop provisioning" not in idle.text
        # Without credentials in use, the method switches at once.
        switched = await post(other, fresh, "method", method="bearer")
        assert switched.headers["location"].endswith("?notice=method#scim-method")
