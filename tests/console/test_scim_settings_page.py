"""Workspace settings > Advanced > SCIM, driven through its forms (no JavaScript)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import ScimToken
from provisio.domain import domains as domain_service
from provisio.domain import scim_credentials as credential_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.scim_methods import ScimMethod
from tests.oauth.helpers import OAuthTenant, csrf_token, make_admin, make_oauth_tenant, sign_in


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://provisio.test") as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> OAuthTenant:
    t = await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)
    await sign_in(browser, t.admin_email)
    return t


def page_path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/settings/advanced"


async def submit(browser: httpx.AsyncClient, tenant: OAuthTenant, action: str, **data: str) -> httpx.Response:
    page = await browser.get(page_path(tenant))
    return await browser.post(
        f"{page_path(tenant)}/scim/{action}", data={"csrf_token": csrf_token(page.text), **data}
    )


async def test_guide_step_2(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    page = await browser.get(page_path(tenant))
    assert page.status_code == 200
    assert "Enable SCIM provisioning" in page.text
    assert not re.search(r'id="enabled" name="enabled"\s+checked', page.text)  # starts off
    assert f"http://provisio.test/scim/v2/{tenant.key}" in page.text

    r = await submit(browser, tenant, "enabled", enabled="on")
    assert r.status_code == 303
    r = await submit(browser, tenant, "method", method="authorization_code")
    assert r.status_code == 303
    page = await browser.get(r.headers["location"])
    assert "Authentication method saved" in page.text and "Redirect URIs" in page.text
    assert "http://provisio.test/oauth/token" in page.text
    assert f"http://provisio.test/oauth/{tenant.key}/authorize" in page.text

    r = await submit(
        browser,
        tenant,
        "okta-callback",
        okta_admin_url="https://acme-admin.okta.com/admin/app/acme_readai_1/instance/0oa1b2c3/#tab-general",
    )
    assert r.status_code == 303
    page = await browser.get(page_path(tenant))
    assert "https://system-admin.okta.com/admin/app/cpc/acme_readai_1/oauth/callback" in page.text

    r = await submit(browser, tenant, "credentials")
    assert r.status_code == 303
    shown = await browser.get(r.headers["location"])
    assert shown.headers["cache-control"] == "no-store"
    client_id = re.search(r'id="client-id" type="text" readonly value="([^"]+)"', shown.text)
    secret = re.search(r'id="client-secret" type="text" readonly value="([^"]+)"', shown.text)
    assert client_id and secret and secret.group(1).startswith("pvcs_")
    again = await browser.get(page_path(tenant))
    assert secret.group(1) not in again.text  # shown once
    assert client_id.group(1) in again.text and "Regenerate Credentials" in again.text

    r = await submit(browser, tenant, "license", auto_charge="on", max_seats="40")
    assert r.status_code == 303
    async with db.reading() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
    assert ws.scim_enabled and ws.scim_auth_method == "authorization_code"
    assert ws.license_auto_charge and ws.license_max_seats == 40


def copy_fields(html: str) -> dict[str, tuple[str, str]]:
    """The page's copy fields: id -> (label, hint)."""
    found = {}
    for match in re.finditer(
        r'<label for="([^"]+)">([^<]+)</label>\s*<div class="copy-row">.*?</div>\s*'
        r'(?:<p class="hint" id="[^"]+-hint">([^<]*)</p>)?',
        html,
        re.S,
    ):
        found[match.group(1)] = (match.group(2), match.group(3) or "")
    return found


# Per method: the copy fields the page shows (label, and the IdP form's field named in its hint), and
# what must not be on the page at all.
EXPECTED_FIELDS = {
    ScimMethod.AUTHORIZATION_CODE: {
        "authorization-url": ("Authorization URL", "In Okta: “Authorization endpoint URI”."),
        "tenant-url": ("Tenant URL", "In Okta: “SCIM connector base URL”."),
        "token-url": ("Token URL", "In Okta: “Access token endpoint URI”."),
    },
    ScimMethod.CLIENT_CREDENTIALS: {
        "tenant-url": ("Tenant URL", "In Microsoft Entra: “Tenant URL”."),
        "token-url": ("Token URL", "In Microsoft Entra: “Token Endpoint”."),
    },
    ScimMethod.BEARER: {"tenant-url": ("Tenant URL", "In Microsoft Entra: “Tenant URL”.")},
}
CREDENTIAL_HINTS = {
    ScimMethod.AUTHORIZATION_CODE: {
        "client-id": "In Okta: “Client ID”.",
        "client-secret": "In Okta: “Client Secret”.",
    },
    ScimMethod.CLIENT_CREDENTIALS: {
        "client-id": "In Microsoft Entra: “Client Identifier”.",
        "client-secret": "In Microsoft Entra: “Client Secret”.",
    },
    ScimMethod.BEARER: {"bearer-token": "In Microsoft Entra: “Secret Token”."},
}


@pytest.mark.parametrize("method", list(ScimMethod))
async def test_the_page_fits_the_method(db: Database, browser: httpx.AsyncClient, method: ScimMethod) -> None:
    tenant = await make_oauth_tenant(db, method, redirect_uris=(), credentials=False)
    await sign_in(browser, tenant.admin_email)
    page = await browser.get(page_path(tenant))
    assert page.status_code == 200
    fields = copy_fields(page.text)
    assert fields == EXPECTED_FIELDS[method]
    authorize = f"http://provisio.test/oauth/{tenant.key}/authorize"
    token_url = "http://provisio.test/oauth/token"
    oauth = method is not ScimMethod.BEARER
    okta = method is ScimMethod.AUTHORIZATION_CODE
    assert (authorize in page.text) is okta
    assert ("Redirect URIs" in page.text) is okta
    assert ("system-admin.okta.com" in page.text) is okta
    assert ('action="' + page_path(tenant) + '/scim/redirect-uris"' in page.text) is okta
    assert (token_url in page.text) is oauth
    assert ("Token Endpoint" in page.text) is (method is ScimMethod.CLIENT_CREDENTIALS)
    assert ("SCIM connector base URL" in page.text) is okta

    # The credentials shown once carry the IdP's names for them too.
    r = await submit(browser, tenant, "credentials")
    assert r.status_code == 303
    shown = copy_fields((await browser.get(r.headers["location"])).text)
    for field, hint in CREDENTIAL_HINTS[method].items():
        assert shown[field][1] == hint, field
    assert {"client-id", "client-secret", "bearer-token"} & set(shown) == set(CREDENTIAL_HINTS[method])


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://okta.example/cb", "https"),
        ("https://okta.example/*", "wildcards"),
        ("https://okta.example/cb#frag", "fragment"),
        ("not a url", "exactly"),
    ],
)
async def test_redirect_uri_is_validated(
    browser: httpx.AsyncClient, tenant: OAuthTenant, uri: str, message: str
) -> None:
    await submit(browser, tenant, "method", method="authorization_code")
    r = await submit(browser, tenant, "redirect-uris", uri=uri)
    assert r.status_code == 400
    assert message in r.text
    assert 'aria-invalid="true"' in r.text


async def test_loopback_redirect_and_removal(browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    await submit(browser, tenant, "method", method="authorization_code")
    assert (await submit(browser, tenant, "redirect-uris", uri="http://127.0.0.1:9000/cb")).status_code == 303
    assert (await submit(browser, tenant, "redirect-uris", uri="http://127.0.0.1:9000/cb")).status_code == 409
    assert (
        await submit(browser, tenant, "redirect-uris/remove", uri="http://127.0.0.1:9000/cb")
    ).status_code == 303
    assert "http://127.0.0.1:9000/cb" not in (await browser.get(page_path(tenant))).text


async def test_bad_okta_url_and_bad_seat_count(browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    await submit(browser, tenant, "method", method="authorization_code")
    r = await submit(browser, tenant, "okta-callback", okta_admin_url="https://example.com/admin/app/x")
    assert r.status_code == 400 and "not an Okta admin URL" in r.text
    r = await submit(browser, tenant, "license", max_seats="lots")
    assert r.status_code == 400 and "whole number" in r.text


async def test_bearer_method_generates_a_token_shown_once(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    await submit(browser, tenant, "enabled", enabled="on")
    r = await submit(browser, tenant, "credentials")
    assert r.status_code == 303 and r.headers["location"] == page_path(tenant) + "?notice=generated"
    assert "pvs_" not in r.text  # the POST's response never carries the token
    shown = await browser.get(r.headers["location"])
    assert shown.headers["cache-control"] == "no-store"
    token = re.search(r'id="bearer-token" type="text" readonly value="([^"]+)"', shown.text)
    assert token
    # At the top of the landing page, before the settings, with the warning that it is shown once.
    assert shown.text.index('id="new-credentials"') < shown.text.index('id="scim-enabled"')
    assert "Shown once." in shown.text and "Your new bearer token" in shown.text
    users = await client.get(
        f"/scim/v2/{tenant.key}/Users", headers={"Authorization": f"Bearer {token.group(1)}"}
    )
    assert users.status_code == 200

    async def tokens() -> list[str]:
        async with db.reading() as session:
            rows = await session.execute(select(ScimToken.id).where(ScimToken.workspace_id == tenant.id))
            return list(rows.scalars())

    issued = await tokens()
    assert len(issued) == 1
    # A reload of the very URL it landed on shows the settings without the token, and creates nothing.
    for _ in range(2):
        again = await browser.get(r.headers["location"])
        assert again.status_code == 200
        assert token.group(1) not in again.text and 'id="bearer-token"' not in again.text
        assert "A bearer token is active" in again.text
    assert await tokens() == issued


async def test_scim_and_credentials_need_a_verified_domain(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        domain = (await domain_service.verified_domains(session, ws.id))[0]
        await domain_service.remove_domain(session, ws, domain)  # SCIM is off: it may go
    for action, data in (("enabled", {"enabled": "on"}), ("credentials", {})):
        r = await submit(browser, tenant, action, **data)
        assert r.status_code == 400 and "needs a verified domain" in r.text, action
        assert 'role="alert"' in r.text and "Domains" in r.text
    async with db.reading() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        assert not ws.scim_enabled
        assert not await credential_service.has_live_bearer_token(session, ws.id)

    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await domain_service.add_domain(session, ws, domain, operator_verified=True)
    assert (await submit(browser, tenant, "enabled", enabled="on")).status_code == 303
    # Now the last verified domain stays while SCIM is on, and the Domains page says why.
    domains = f"/console/workspaces/{tenant.key}/settings/domains"
    page = await browser.get(domains)
    r = await browser.post(f"{domains}/remove", data={"csrf_token": csrf_token(page.text), "domain": domain})
    assert r.status_code == 400 and "only verified domain" in r.text and "turn SCIM off" in r.text


async def test_only_admins_of_the_workspace(db: Database, app: object, tenant: OAuthTenant) -> None:
    outsider = await make_admin(db)
    stranger = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://provisio.test")  # type: ignore[arg-type]
    r = await stranger.get(page_path(tenant))
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
    await sign_in(stranger, outsider)
    assert (await stranger.get(page_path(tenant))).status_code == 404
    login = await stranger.get("/console/login", follow_redirects=True)
    r = await stranger.post(
        f"{page_path(tenant)}/scim/enabled", data={"csrf_token": csrf_token(login.text), "enabled": "on"}
    )
    assert r.status_code == 404


async def test_forms_need_csrf(browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    r = await browser.post(f"{page_path(tenant)}/scim/enabled", data={"enabled": "on"})
    assert r.status_code == 403
    r = await browser.post(f"{page_path(tenant)}/scim/credentials", data={"csrf_token": "forged"})
    assert r.status_code == 403
