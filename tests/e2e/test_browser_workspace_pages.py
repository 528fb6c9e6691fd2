"""Members, Billing & seats and Domains in a real browser (Debian's chromium through Playwright) against a
live server that verifies domains with the test DNS server: sign in, add and verify a domain, buy seats
and read the ledger, search members, deactivate one added by hand (through the confirmation page) and
list the members the IdP removed. Saves the README's screenshots."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain import console_members, events
from provisio.domain import domains as domain_service
from provisio.domain import members as member_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from provisio.domain.scim_methods import ScimMethod
from tests.domain.dns_server import TxtServer, txt_server
from tests.domain.helpers import unique_domain
from tests.e2e.screenshots import screenshot_dir
from tests.e2e.test_browser_setup import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.live_server import LiveServer, live_server
from tests.oauth.helpers import PASSWORD, OAuthTenant, make_oauth_tenant

DOCS = screenshot_dir()
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
IDP_PEOPLE = [("Ada", "Lovelace"), ("Alan", "Turing"), ("Katherine", "Johnson"), ("Edsger", "Dijkstra")]
REMOVED = ("Charles", "Babbage")  # provisioned, then deleted by the IdP (SCIM DELETE)
IDP_CLIENT = "OAuth client okta-acme-prod"

pytestmark = pytest.mark.browser


@dataclass
class Setup:
    live: LiveServer
    dns: TxtServer
    tenant: OAuthTenant
    own_domain: str


async def _seed(url: str) -> tuple[OAuthTenant, str]:
    db = Database.from_url(url)
    try:
        tenant = await make_oauth_tenant(
            db,
            ScimMethod.BEARER,
            redirect_uris=(),
            enabled=False,
            credentials=False,
            name="Acme Corp",
            seats=10,  # the operator's contract: the ledger's first entry
        )
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, tenant.key)
            ws.allow_other_domains = False
            own = (await domain_service.verified_domains(session, ws.id))[0]
            for given, family in [*IDP_PEOPLE, REMOVED]:
                email = f"{given.lower()}.{family.lower()}@{own}"
                # Alan signs in with a short userName; his e-mail address is another column.
                user_name = "aturing" if given == "Alan" else email
                doc = {
                    "schemas": [USER],
                    "userName": user_name,
                    "name": {"givenName": given, "familyName": family},
                    "displayName": f"{given} {family}",
                    "emails": [{"value": email, "type": "work", "primary": True}],
                    "active": True,
                }
                member = await member_service.create_member(session, ws, doc, actor=IDP_CLIENT, by=CLI_ACTOR)
                await events.record_event(
                    session,
                    workspace_id=ws.id,
                    actor=IDP_CLIENT,
                    action="create",
                    outcome=events.SUCCESS,
                    status=201,
                    member_id=member.id,
                    user_name=user_name,
                )
                if (given, family) == REMOVED:
                    await member_service.delete_member(session, ws, member, by=CLI_ACTOR)
            await console_members.add_member(
                session,
                ws,
                email=f"margaret.hamilton@{own}",
                name="Margaret Hamilton",
                actor=f"{tenant.admin_email} (console)",
                by=CLI_ACTOR,
            )
        return tenant, own
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    _require_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-pages') / 'provisio.db'}"
    upgrade(url)
    tenant, own = asyncio.run(_seed(url))
    with txt_server() as dns, pytest.MonkeyPatch.context() as mp:
        # The live server checks TXT records with the test DNS server.
        mp.setitem(os.environ, "PROVISIO_DNS_NAMESERVERS", "127.0.0.1")
        mp.setitem(os.environ, "PROVISIO_DNS_PORT", str(dns.port))
        mp.setitem(os.environ, "PROVISIO_DNS_TIMEOUT_SECONDS", "2")
        with live_server(url) as live:
            yield Setup(live=live, dns=dns, tenant=tenant, own_domain=own)


def test_members_billing_and_domains_in_a_browser(setup: Setup) -> None:
    from playwright.sync_api import expect, sync_playwright

    live, dns, tenant = setup.live, setup.dns, setup.tenant
    new_domain = unique_domain("acme-labs")
    pending_domain = unique_domain("acme-eu")
    DOCS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})

        # Sign in; the workspace's pages are in its navigation.
        page.goto(f"{live.url}/console/login")
        page.get_by_label("Email").fill(tenant.admin_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="SCIM provisioning")).to_be_visible()
        nav = page.get_by_role("navigation", name="Workspace pages")
        expect(nav.get_by_role("link", name="SCIM settings")).to_have_attribute("aria-current", "page")

        # Domains: add one, see its TXT record, verify before and after publishing it.
        nav.get_by_role("link", name="Domains").click()
        expect(page.get_by_role("heading", name="Domains", exact=True)).to_be_visible()
        page.get_by_label("Domain", exact=True).fill(new_domain)
        page.get_by_role("button", name="Add domain").click()
        result = page.locator("#verification-result")
        expect(result).to_contain_text(f"{new_domain} added")
        record = page.get_by_role("textbox", name=f"TXT record value for {new_domain}").input_value()
        assert re.fullmatch(r"provisio-verification=[0-9a-f]{32}", record)
        page.get_by_role("button", name=f"Verify {new_domain}").click()
        expect(result).to_contain_text("is not verified yet")
        dns.set_txt(new_domain, "v=spf1 -all", record)
        page.get_by_role("button", name=f"Verify {new_domain}").click()
        expect(result).to_contain_text(f"{new_domain} is verified")
        expect(page.get_by_role("button", name=f"Verify {new_domain}")).to_have_count(0)
        page.get_by_label("Domain", exact=True).fill(pending_domain)
        page.get_by_role("button", name="Add domain").click()
        expect(page.get_by_role("textbox", name=f"TXT record value for {pending_domain}")).to_be_visible()
        page.screenshot(path=str(DOCS / "domains.png"), full_page=True)

        # Remove asks first; Cancel changes nothing, confirming removes and names the domain.
        gone_domain = unique_domain("acme-old")
        page.get_by_label("Domain", exact=True).fill(gone_domain)
        page.get_by_role("button", name="Add domain").click()
        page.get_by_role("button", name=f"Remove {gone_domain}").click()
        expect(page.get_by_role("heading", name=f"Remove {gone_domain}?")).to_be_visible()
        page.get_by_role("link", name="Cancel").click()
        expect(page.get_by_role("textbox", name=f"TXT record value for {gone_domain}")).to_be_visible()
        page.get_by_role("button", name=f"Remove {gone_domain}").click()
        page.get_by_role("button", name=f"Remove {gone_domain}").click()  # the confirmation page's button
        expect(result).to_have_text(f"{gone_domain} removed.")
        expect(page.get_by_role("textbox", name=f"TXT record value for {gone_domain}")).to_have_count(0)

        # Billing & seats: buy seats by hand and find the purchase at the top of the ledger.
        nav.get_by_role("link", name="Billing & seats").click()
        expect(page.locator("#seats-used")).to_have_text("5")
        expect(page.locator("#seats-purchased")).to_have_text("10")
        page.get_by_label("Number of seats").fill("5")
        page.get_by_label("Note for the ledger").fill("Q3 hires")
        page.get_by_role("button", name="Buy seats").click()
        expect(page.get_by_role("status")).to_contain_text("Seats bought")
        expect(page.locator("#seats-purchased")).to_have_text("15")
        newest = page.locator("#ledger tbody tr").first
        expect(newest).to_contain_text("+5")
        expect(newest).to_contain_text("15")
        expect(newest).to_contain_text("Q3 hires")
        expect(newest).to_contain_text(tenant.admin_email)
        expect(page.locator("#ledger tbody tr")).to_have_count(2)
        page.screenshot(path=str(DOCS / "billing.png"), full_page=True)

        # Members: add one by hand (in the newly verified domain), search, deactivate them.
        nav.get_by_role("link", name="Members").click()
        expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
        expect(page.locator(".seat-summary")).to_contain_text("5 of 15 seats used")
        page.get_by_label("E-mail address").fill(f"grace.hopper@{new_domain}")
        page.get_by_label("Name", exact=True).fill("Grace Hopper")
        page.get_by_role("button", name="Add member").click()
        expect(page.get_by_role("status")).to_contain_text(f"Added grace.hopper@{new_domain}")
        expect(page.locator(".seat-summary")).to_contain_text("6 of 15 seats used")

        page.get_by_label("Search by name, userName or e-mail").fill("grace")
        page.get_by_role("button", name="Search").click()
        rows = page.locator("#member-list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Grace Hopper")
        expect(rows.first).to_contain_text("Added here")
        page.get_by_role("button", name="Deactivate Grace Hopper").click()
        # A confirmation page first: nothing has changed yet.
        expect(page.get_by_role("heading", name=f"Deactivate grace.hopper@{new_domain}?")).to_be_visible()
        assert "/members/deactivate?" in page.url
        page.get_by_role("button", name="Deactivate", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text(f"Deactivated grace.hopper@{new_domain}.")
        expect(page.get_by_label("Search by name, userName or e-mail")).to_have_value("grace")
        expect(rows.first).to_contain_text("Deactivated")
        expect(page.locator(".seat-summary")).to_contain_text("5 of 15 seats used")

        # IdP-managed members are read-only: a badge, no deactivate button.
        page.get_by_label("Search by name, userName or e-mail").fill("lovelace")
        page.get_by_role("button", name="Search").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Identity provider")
        expect(rows.first).to_contain_text("Read-only")
        expect(page.get_by_role("button", name="Deactivate Ada Lovelace")).to_have_count(0)

        expect(rows.first).to_contain_text(IDP_CLIENT)  # last changed by

        page.get_by_role("link", name="Clear").click()
        expect(rows).to_have_count(6)
        expect(page.get_by_text("charles.babbage@")).to_have_count(0)  # removed: not among the members
        grace = rows.filter(has_text="Grace Hopper")
        expect(grace).to_contain_text(f"{tenant.admin_email} (console)")
        page.set_viewport_size({"width": 1800, "height": 900})  # the list's columns side by side
        page.screenshot(path=str(DOCS / "members.png"), full_page=True)

        # No e-mail address or userName is broken across lines, even in a narrow window (the table
        # scrolls sideways instead).
        page.set_viewport_size({"width": 640, "height": 900})
        for cell in page.locator(
            "#member-list td.email, #member-list td.user-name, #member-list td.changed-by"
        ).all():
            assert cell.evaluate("e => getComputedStyle(e).whiteSpace") == "nowrap"
            lines = cell.evaluate(
                "e => { const r = document.createRange(); r.selectNodeContents(e);"
                " return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }"
            )
            assert lines == 1, cell.inner_text()
        page.set_viewport_size({"width": 1100, "height": 900})

        # Members the IdP deleted are listed under Removed, read-only.
        page.get_by_label("Status").select_option("removed")
        page.get_by_role("button", name="Search").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Charles Babbage")
        expect(rows.first).to_contain_text("Removed")
        expect(rows.first).to_contain_text(IDP_CLIENT)
        expect(rows.first.get_by_role("button")).to_have_count(0)
        browser.close()
