"""The Provisioning log in a real browser (Debian's chromium through Playwright) against a live server
that real SCIM requests went through: successes and failures newest first, the outcome and member
filters, older pages, an event in full. Saves the README's screenshot docs/provisioning-log.png."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain import tokens as token_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.scim_methods import ScimMethod
from tests.domain.helpers import okta_user
from tests.e2e.screenshots import screenshot_dir
from tests.e2e.test_browser_setup import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.live_server import LiveServer, live_server
from tests.oauth.helpers import PASSWORD, OAuthTenant, make_oauth_tenant

DOCS = screenshot_dir()
PEOPLE = ["ada.lovelace", "alan.turing", "katherine.johnson", "edsger.dijkstra", "grace.hopper"]

pytestmark = pytest.mark.browser


@dataclass
class Setup:
    live: LiveServer
    tenant: OAuthTenant
    token: str


async def _seed(url: str) -> tuple[OAuthTenant, str]:
    db = Database.from_url(url)
    try:
        tenant = await make_oauth_tenant(db, ScimMethod.BEARER, redirect_uris=(), name="Acme Corp")
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, tenant.key)
            issued = await token_service.create_token(session, ws, "okta")
        return tenant, issued.token
    finally:
        await db.dispose()


def _traffic(live: LiveServer, tenant: OAuthTenant, token: str) -> None:
    """What an IdP's sync does to a log: creates, a duplicate, a bad request, an unknown member, a
    deactivation and a run of requests with a stale token."""
    domain = f"{tenant.key}.example"
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "Okta SCIM Client"}
    base = f"{live.url}{tenant.scim_base}"
    with httpx.Client(timeout=10) as http:
        ids = []
        for name in PEOPLE:
            body = okta_user(f"{name}@{domain}", given=name.split(".")[0].title()) | {"password": "hunter2!"}
            r = http.post(f"{base}/Users", json=body, headers=headers)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        assert (
            http.post(f"{base}/Users", json=okta_user(f"ada.lovelace@{domain}"), headers=headers).status_code
            == 409
        )
        assert (
            http.post(f"{base}/Users", json={"name": {"givenName": "X"}}, headers=headers).status_code == 400
        )
        assert (
            http.get(f"{base}/Users/00000000-0000-4000-8000-000000000000", headers=headers).status_code == 404
        )
        r = http.put(
            f"{base}/Users/{ids[1]}", json=okta_user(f"alan.turing@{domain}", active=False), headers=headers
        )
        assert r.status_code == 200, r.text
        for _ in range(12):
            assert http.get(f"{base}/Users", headers={"Authorization": "Bearer stale"}).status_code == 401


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    _require_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-log') / 'provisio.db'}"
    upgrade(url)
    tenant, token = asyncio.run(_seed(url))
    with live_server(url) as live:
        _traffic(live, tenant, token)
        yield Setup(live=live, tenant=tenant, token=token)


def test_provisioning_log_in_a_browser(setup: Setup) -> None:
    from playwright.sync_api import expect, sync_playwright

    live, tenant = setup.live, setup.tenant
    DOCS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live.url}/console/login")
        page.get_by_label("Email").fill(tenant.admin_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        nav = page.get_by_role("navigation", name="Workspace pages")
        nav.get_by_role("link", name="Provisioning log").click()
        expect(page.get_by_role("heading", name="Provisioning log")).to_be_visible()
        expect(nav.get_by_role("link", name="Provisioning log")).to_have_attribute("aria-current", "page")

        rows = page.locator("table.log tbody tr")
        # 5 creates, 409, 400, 404, the deactivation and one counted row for the 12 stale-token requests.
        expect(rows).to_have_count(10)
        expect(rows.first).to_contain_text("\u00d712")  # "times 12"
        expect(rows.first).to_contain_text("401")
        expect(page.get_by_text("hunter2!")).to_have_count(0)

        page.get_by_label("Outcome").select_option("failure")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(4)
        for status in ("401", "404", "400", "409"):
            expect(page.locator("table.log")).to_contain_text(status)
        expect(page.locator("table.log")).not_to_contain_text("Success")
        page.screenshot(path=str(DOCS / "provisioning-log.png"), full_page=True)

        page.get_by_label("Member id or start of userName").fill("ada.")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("409")
        rows.first.get_by_role("link", name="Details").click()
        expect(page.get_by_role("heading", name="Create failed")).to_be_visible()
        expect(page.locator(".facts").first).to_contain_text("uniqueness")
        expect(page.locator(".request-body")).to_contain_text("ada.lovelace@")
        expect(page.get_by_text("Okta SCIM Client")).to_be_visible()

        page.get_by_role("link", name="Back to the provisioning log").click()
        page.get_by_label("Operation").select_option("update")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(0)
        page.get_by_label("Operation").select_option("deactivate")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("alan.turing@")
        browser.close()
