"""The guide's Steps 2-3 in a real browser (Debian's chromium through Playwright) against a live server:
sign in, enable SCIM, pick Authorization Code, add Okta's redirect URI, generate credentials, run Okta's
authorization, click "Allow access", then use the token like Okta does. Saves the README's screenshots."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.httpx_client import OAuth2Client

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain.scim_methods import ScimMethod
from tests.e2e.screenshots import screenshot_dir
from tests.live_server import LiveServer, live_server
from tests.oauth.helpers import PASSWORD, OAuthTenant, make_oauth_tenant, okta_user

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OKTA_ADMIN_URL = "https://acme-admin.okta.com/admin/app/acme_provisio_1/instance/0oa1b2c3d4/#tab-general"
OKTA_CALLBACK = "https://system-admin.okta.com/admin/app/cpc/acme_provisio_1/oauth/callback"
DOCS = screenshot_dir()

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: apt-get install chromium (the tests never download a browser)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, OAuthTenant]]:
    _require_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'provisio.db'}"
    upgrade(url)

    async def seed() -> OAuthTenant:
        db = Database.from_url(url)
        try:
            return await make_oauth_tenant(
                db, ScimMethod.BEARER, redirect_uris=(), enabled=False, credentials=False
            )
        finally:
            await db.dispose()

    tenant = asyncio.run(seed())
    with live_server(url) as live:
        yield live, tenant


def test_okta_setup_in_a_browser(
    server: tuple[LiveServer, OAuthTenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    live, tenant = server
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the live server is http://127.0.0.1
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})

        # Okta is not reachable from the tests: capture the redirect to its callback instead.
        callbacks: list[str] = []

        def okta(route: Route) -> None:
            callbacks.append(route.request.url)
            route.fulfill(status=200, content_type="text/html", body="<h1>Okta: authenticated</h1>")

        page.route("https://system-admin.okta.com/**", okta)

        # Sign in.
        page.goto(f"{live.url}/console/login")
        page.get_by_label("Email").fill(tenant.admin_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="SCIM provisioning")).to_be_visible()

        # Step 2: enable, pick Authorization Code, add the redirect URI, generate credentials.
        page.get_by_label("Enable SCIM provisioning").check()
        page.locator("#scim-enabled").get_by_role("button", name="Save").click()
        expect(page.get_by_role("status").filter(has_text="SCIM provisioning is on")).to_be_visible()
        page.get_by_label("OAuth 2.0 Authorization Code").check()
        page.get_by_role("button", name="Save method").click()
        page.get_by_text("Using Okta? Get the callback").click()
        page.get_by_label("Okta Admin Console URL of your app").fill(OKTA_ADMIN_URL)
        page.get_by_role("button", name="Add Okta callback").click()
        expect(page.locator(".uri-list")).to_contain_text(OKTA_CALLBACK)
        page.get_by_role("button", name="Generate Credentials").click()
        client_id = page.get_by_role("textbox", name="Client ID").input_value()
        client_secret = page.get_by_role("textbox", name="Client Secret").input_value()
        assert client_id.startswith("pvc_") and client_secret.startswith("pvcs_")
        expect(page.get_by_role("button", name="Copy Client Secret")).to_be_visible()
        token_url = page.get_by_role("textbox", name="Token URL").input_value()
        authorization_url = page.get_by_role("textbox", name="Authorization URL").input_value()
        tenant_url = page.get_by_role("textbox", name="Tenant URL").input_value()
        assert tenant_url == f"{live.url}/scim/v2/{tenant.key}"
        expect(page.get_by_role("textbox", name="Tenant URL")).to_have_accessible_description(
            "In Okta: “SCIM connector base URL”."
        )
        expect(page.get_by_role("navigation", name="Workspace pages")).to_be_visible()
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / "scim-settings.png"), full_page=True)

        # Step 3: "Authenticate with …" in Okta sends the admin's browser to the Authorization URL.
        okta_client = OAuth2Client(client_id, client_secret, redirect_uri=OKTA_CALLBACK, scope="scim")
        url, state = okta_client.create_authorization_url(authorization_url)
        page.goto(url)
        expect(page.get_by_role("heading", name=f"Allow Okta to provision {tenant.name}?")).to_be_visible()
        page.screenshot(path=str(DOCS / "consent.png"), full_page=True)
        page.get_by_role("button", name="Allow access").click()
        expect(page.get_by_text("Okta: authenticated")).to_be_visible()
        browser.close()

    assert len(callbacks) == 1
    params = {k: v[0] for k, v in parse_qs(urlsplit(callbacks[0]).query).items()}
    assert params["state"] == state

    # Okta exchanges the code at the Token URL and provisions with the token.
    try:
        token = okta_client.fetch_token(token_url, code=params["code"])
        created = okta_client.post(f"{tenant_url}/Users", json=okta_user("ada@acme.example"))
        assert created.status_code == 201, created.text
        found = okta_client.get(f"{tenant_url}/Users", params={"filter": 'userName eq "ada@acme.example"'})
        assert found.json()["totalResults"] == 1
        assert token["refresh_token"]
    finally:
        okta_client.close()
