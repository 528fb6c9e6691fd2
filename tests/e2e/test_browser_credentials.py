"""Generating and regenerating credentials in a real browser (Debian's chromium through Playwright)
against a live server: the secret is visible at the top of the page without scrolling, a reload or
back/forward issues nothing new, and a regeneration with a rotation window keeps both secrets working
for real client-credentials token requests."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain.scim_methods import ScimMethod
from tests.e2e.test_browser_setup import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.live_server import LiveServer, live_server
from tests.oauth.helpers import PASSWORD, OAuthTenant, make_oauth_tenant, okta_user

VIEWPORT = {"width": 1100, "height": 800}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, OAuthTenant, str]]:
    _require_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('credentials') / 'provisio.db'}"
    upgrade(url)

    async def seed() -> OAuthTenant:
        db = Database.from_url(url)
        try:
            return await make_oauth_tenant(
                db, ScimMethod.CLIENT_CREDENTIALS, redirect_uris=(), credentials=False
            )
        finally:
            await db.dispose()

    tenant = asyncio.run(seed())
    with live_server(url) as live:
        yield live, tenant, url


def _clients(url: str, workspace_id: str) -> list[tuple[str, str]]:
    # Plain sqlite3: Playwright's sync API keeps an event loop running on this thread.
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
        rows = conn.execute(
            "SELECT client_id, secret_hash FROM oauth_clients WHERE workspace_id = ? ORDER BY created_at",
            (workspace_id,),
        )
        return [(row[0], row[1]) for row in rows]


def _token_status(live: LiveServer, client_id: str, secret: str) -> int:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return httpx.post(f"{live.url}/oauth/token", data=data).status_code


def _provision(live: LiveServer, tenant: OAuthTenant, client_id: str, secret: str) -> None:
    """What Entra does: a token with the client credentials, then a user created with it."""
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    access = httpx.post(f"{live.url}/oauth/token", data=data).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}", "User-Agent": "Microsoft.Azure.AD.Provisioning/1.0"}
    created = httpx.post(
        f"{live.url}/scim/v2/{tenant.key}/Users", json=okta_user("ada@acme.example"), headers=headers
    )
    assert created.status_code == 201, created.text


def test_credentials_at_the_top_and_never_reissued(server: tuple[LiveServer, OAuthTenant, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    live, tenant, url = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{live.url}/console/login")
        page.get_by_label("Email").fill(tenant.admin_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="SCIM provisioning")).to_be_visible()
        # Client Credentials (Entra): no Authorization URL or redirect URIs, and Entra's field names.
        expect(page.get_by_role("textbox", name="Authorization URL")).to_have_count(0)
        expect(page.get_by_role("heading", name="Redirect URIs")).to_have_count(0)
        expect(page.get_by_role("textbox", name="Token URL")).to_have_accessible_description(
            "In Microsoft Entra: “Token Endpoint”."
        )

        page.get_by_role("button", name="Generate Credentials").click()
        secret_box = page.get_by_role("textbox", name="Client Secret")
        expect(secret_box).to_be_visible()
        expect(page.get_by_text("Shown once.")).to_be_visible()
        expect(page.get_by_role("button", name="Copy Client Secret")).to_be_visible()
        # Visible where the admin lands, without scrolling.
        assert page.evaluate("window.scrollY") == 0
        box = secret_box.bounding_box()
        assert box is not None and box["y"] + box["height"] < VIEWPORT["height"]
        client_id = page.get_by_role("textbox", name="Client ID").input_value()
        expect(page.get_by_role("textbox", name="Client ID")).to_have_accessible_description(
            "In Microsoft Entra: “Client Identifier”."
        )
        secret = secret_box.input_value()
        assert page.url.endswith("?notice=generated")
        issued = _clients(url, tenant.id)
        assert len(issued) == 1 and issued[0][0] == client_id

        # A reload shows the settings again, without the secret, and issues nothing.
        page.reload()
        expect(page.get_by_role("heading", name="SCIM provisioning")).to_be_visible()
        expect(page.get_by_role("textbox", name="Client Secret")).to_have_count(0)
        assert secret not in page.content()
        assert _clients(url, tenant.id) == issued
        assert _token_status(live, client_id, secret) == 200

        # The connection status at the top: waiting until Entra's first SCIM request, connected after it.
        state = page.locator("#connection-state")
        expect(state).to_contain_text("Waiting for the first request")
        _provision(live, tenant, client_id, secret)
        page.reload()
        expect(state).to_contain_text("Connected")
        expect(page.locator("#connection-idp")).to_have_text("Microsoft Entra")
        expect(page.locator("#last-success")).to_contain_text("create, status 201")
        expect(page.locator("#requests-24h")).to_have_text("1")
        expect(page.locator("#failures-24h")).to_have_text("0")
        link = page.get_by_role("link", name="Successful requests in the log")
        expect(link).to_have_attribute("href", f"/console/workspaces/{tenant.key}/log?outcome=success")
        panel = page.locator("#connection-status").bounding_box()
        assert panel is not None and panel["y"] < VIEWPORT["height"]  # at the top, without scrolling

        # Regenerate: a confirmation page first, saying what stops; then with a 1 hour window.
        page.get_by_role("button", name="Regenerate Credentials").click()
        expect(page.get_by_text("Microsoft Entra ID will stop provisioning")).to_be_visible()
        assert _clients(url, tenant.id) == issued
        page.get_by_label("Keep the current secret working for 1 hour").check()
        page.get_by_role("button", name="Regenerate Credentials").click()
        new_box = page.get_by_role("textbox", name="Client Secret")
        expect(new_box).to_be_visible()
        box = new_box.bounding_box()
        assert box is not None and box["y"] + box["height"] < VIEWPORT["height"]
        new_secret = new_box.input_value()
        assert new_secret != secret
        assert page.get_by_role("textbox", name="Client ID").input_value() == client_id
        expect(page.get_by_text("still accepted until")).to_be_visible()
        rotated = _clients(url, tenant.id)

        # Back to the confirmation page and forward again: nothing new is issued or shown.
        page.go_back()
        expect(page.get_by_role("heading", name="Regenerate the client secret?")).to_be_visible()
        page.go_forward()
        expect(page.get_by_role("heading", name="SCIM provisioning")).to_be_visible()
        assert new_secret not in page.content()
        page.reload()
        assert new_secret not in page.content()
        assert _clients(url, tenant.id) == rotated
        browser.close()

    assert _token_status(live, client_id, secret) == 200  # inside the rotation window
    assert _token_status(live, client_id, new_secret) == 200
