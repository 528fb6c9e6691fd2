"""Workspace > Admins in a real browser (Debian's chromium through Playwright) against a live server: an
admin adds a colleague by e-mail and gets the one-time set-password link (gone on reload); the colleague
opens it in a browser of their own, sets a password and signs in; then the first admin removes them
through the confirmation page, and the colleague's open session no longer reaches the workspace."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain.scim_methods import ScimMethod
from tests.e2e.screenshots import screenshot_dir
from tests.e2e.test_browser_setup import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.live_server import LiveServer, live_server
from tests.oauth.helpers import PASSWORD, OAuthTenant, make_oauth_tenant

DOCS = screenshot_dir()
NEW_PASSWORD = "a long new passphrase"

pytestmark = pytest.mark.browser


@dataclass
class Setup:
    live: LiveServer
    tenant: OAuthTenant


async def _seed(url: str) -> OAuthTenant:
    db = Database.from_url(url)
    try:
        return await make_oauth_tenant(
            db, ScimMethod.BEARER, redirect_uris=(), enabled=False, credentials=False, name="Acme Corp"
        )
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    _require_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-admins') / 'provisio.db'}"
    upgrade(url)
    tenant = asyncio.run(_seed(url))
    with live_server(url) as live:
        yield Setup(live=live, tenant=tenant)


def test_add_an_admin_who_sets_a_password_then_remove_them(setup: Setup) -> None:
    from playwright.sync_api import expect, sync_playwright

    live, tenant = setup.live, setup.tenant
    colleague = f"grace-{uuid.uuid4().hex[:6]}@acme.example"
    DOCS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        owner = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()

        # Sign in; Admins is in the workspace's navigation and lists the admin alone.
        owner.goto(f"{live.url}/console/login")
        owner.get_by_label("Email").fill(tenant.admin_email)
        owner.get_by_label("Password").fill(PASSWORD)
        owner.get_by_role("button", name="Sign in").click()
        nav = owner.get_by_role("navigation", name="Workspace pages")
        nav.get_by_role("link", name="Admins").click()
        expect(owner.get_by_role("heading", name="Admins", exact=True)).to_be_visible()
        expect(nav.get_by_role("link", name="Admins")).to_have_attribute("aria-current", "page")
        rows = owner.locator("#admin-list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("The last admin")

        # Add a colleague by e-mail: the page shows the one-time link at the top, once.
        owner.get_by_label("E-mail address").fill(colleague)
        owner.get_by_role("button", name="Add admin").click()
        expect(owner.locator("#notice")).to_contain_text(f"Added {colleague} as an admin of {tenant.name}")
        link = owner.get_by_role("textbox", name="Set-password link").input_value()
        assert re.fullmatch(rf"{re.escape(live.url)}/console/set-password/[A-Za-z0-9_-]{{40,}}", link)
        expect(rows).to_have_count(2)
        expect(rows.nth(1)).to_contain_text("Not set yet")
        expect(rows.nth(1)).to_contain_text(f"{tenant.admin_email} (console)")
        owner.screenshot(path=str(DOCS / "admins.png"), full_page=True)
        owner.reload()
        expect(owner.locator("#notice")).to_be_visible()
        expect(owner.get_by_role("textbox", name="Set-password link")).to_have_count(0)

        # The colleague, in a browser of their own: set a password with the link, then sign in.
        theirs = browser.new_context().new_page()
        theirs.goto(link)
        expect(theirs.get_by_role("heading", name="Set your password")).to_be_visible()
        expect(theirs.locator("main")).to_contain_text(colleague)
        theirs.get_by_label("New password").fill("too short")
        theirs.get_by_label("Repeat the password").fill("too short")
        theirs.get_by_role("button", name="Set password").click()
        expect(theirs.get_by_role("alert")).to_contain_text("at least 10 characters")
        theirs.get_by_label("New password").fill(NEW_PASSWORD)
        theirs.get_by_label("Repeat the password").fill(NEW_PASSWORD)
        theirs.get_by_role("button", name="Set password").click()
        expect(theirs.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(theirs.locator("#login-notice")).to_contain_text("Your password is set")
        theirs.get_by_label("Email").fill(colleague)
        theirs.get_by_label("Password").fill(NEW_PASSWORD)
        theirs.get_by_role("button", name="Sign in").click()
        expect(theirs.get_by_role("heading", name="SCIM provisioning")).to_be_visible()
        theirs.get_by_role("navigation", name="Workspace pages").get_by_role("link", name="Admins").click()
        expect(theirs.locator("#admin-list")).to_contain_text(tenant.admin_email)
        # The link worked once.
        used = browser.new_context().new_page()
        used.goto(link)
        expect(used.get_by_role("heading", name="This link does not work")).to_be_visible()

        # The first admin removes the colleague: a confirmation page says what happens first.
        owner.reload()
        expect(owner.locator("#admin-list tbody tr").nth(1)).to_contain_text("Set")
        owner.get_by_role("button", name=f"Remove {colleague}").click()
        expect(owner.get_by_role("heading", name=f"Remove {colleague} as an admin?")).to_be_visible()
        expect(owner.locator("#confirm")).to_contain_text(f"{colleague} will at once no longer be able")
        owner.get_by_role("link", name="Cancel").click()
        expect(owner.locator("#admin-list tbody tr")).to_have_count(2)
        owner.get_by_role("button", name=f"Remove {colleague}").click()
        owner.get_by_role("button", name="Remove admin").click()
        expect(owner.locator("#notice")).to_have_text(
            f"Removed {colleague}: they can no longer open the pages of {tenant.name}."
        )
        expect(owner.locator("#admin-list tbody tr")).to_have_count(1)

        # The colleague's open page no longer reaches the workspace.
        theirs.reload()
        expect(theirs.get_by_role("heading", name="Workspace not found")).to_be_visible()
        browser.close()
