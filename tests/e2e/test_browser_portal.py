"""A sign-in link in a real browser (Debian's chromium through Playwright) against a live server: the host
application's page sends the person to the link, they land on the workspace's SCIM settings signed in,
"Back to <host>" leads back to the host application from every page, and the link works only once."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain import api_keys
from provisio.domain.scim_methods import ScimMethod
from tests.e2e.test_browser_setup import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.live_server import LiveServer, free_port, live_server
from tests.oauth.helpers import OAuthTenant, make_oauth_tenant

pytestmark = pytest.mark.browser

HOST_PAGE = b"<!doctype html><title>Host app settings</title><h1>Host app settings</h1>"


class _HostApp(BaseHTTPRequestHandler):
    """The host application's settings page, where "Back to" leads."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(HOST_PAGE)))
        self.end_headers()
        self.wfile.write(HOST_PAGE)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@dataclass
class Setup:
    live: LiveServer
    tenant: OAuthTenant
    api_key: str
    host: str  # the host application's origin, on 127.0.0.1


async def _seed(url: str) -> tuple[OAuthTenant, str]:
    db = Database.from_url(url)
    try:
        tenant = await make_oauth_tenant(
            db, ScimMethod.BEARER, redirect_uris=(), enabled=False, credentials=False, name="Acme Corp"
        )
        async with db.writing() as session:
            issued = await api_keys.create_key(session, "host app")
        return tenant, issued.key
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    _require_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-portal') / 'provisio.db'}"
    upgrade(url)
    tenant, key = asyncio.run(_seed(url))
    host_app = ThreadingHTTPServer(("127.0.0.1", free_port()), _HostApp)
    thread = threading.Thread(target=host_app.serve_forever, daemon=True)
    thread.start()
    host = f"http://127.0.0.1:{host_app.server_address[1]}"
    try:
        with live_server(url, env={"PROVISIO_PORTAL_RETURN_URLS": f"{host}/settings"}) as live:
            yield Setup(live=live, tenant=tenant, api_key=key, host=host)
    finally:
        host_app.shutdown()
        host_app.server_close()


def _portal_link(setup: Setup, email: str, return_url: str) -> str:
    r = httpx.post(
        f"{setup.live.url}/api/v1/workspaces/{setup.tenant.key}/portal-links",
        json={"email": email, "return_url": return_url},
        headers={"Authorization": f"Bearer {setup.api_key}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    url: str = r.json()["url"]
    return url


def test_a_sign_in_link_lands_on_scim_settings_with_a_way_back(setup: Setup) -> None:
    from playwright.sync_api import expect, sync_playwright

    email = f"pat-{uuid.uuid4().hex[:6]}@host-app.example"
    return_url = f"{setup.host}/settings/integrations?tab=scim"
    link = _portal_link(setup, email, return_url)
    back_name = f"Back to 127.0.0.1:{setup.host.rsplit(':', 1)[1]}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            page.goto(link)
            expect(page.get_by_role("heading", name="SCIM provisioning")).to_be_visible()
            assert page.url == f"{setup.live.url}/console/workspaces/{setup.tenant.key}/settings/advanced"
            expect(page.locator(".who")).to_contain_text(email)
            back = page.get_by_role("link", name=back_name)
            expect(back).to_have_attribute("href", return_url)

            # On every page of the session.
            nav = page.get_by_role("navigation", name="Workspace pages")
            nav.get_by_role("link", name="Members").click()
            expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
            back = page.get_by_role("link", name=back_name)
            expect(back).to_have_attribute("href", return_url)
            back.click()
            expect(page.get_by_role("heading", name="Host app settings")).to_be_visible()
            assert page.url == return_url

            # Spent: in another browser the same link says so, and signs nobody in.
            other = browser.new_context().new_page()
            other.goto(link)
            expect(other.get_by_role("heading", name="This sign-in link has been used")).to_be_visible()
            expect(other.get_by_role("alert")).to_contain_text("ask your application for a new link")
            expect(other.get_by_role("link", name=back_name)).to_have_attribute("href", return_url)
            expect(other.locator(".who")).to_have_count(0)
        finally:
            browser.close()
