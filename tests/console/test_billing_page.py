"""Workspace settings > Billing & seats through its forms (no JavaScript): seat use, buying seats by hand,
licence auto-charge (the setting the SCIM page shows too), and the seat ledger."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from provisio.db.engine import Database
from provisio.domain import seats as seat_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from tests.console.pages import (
    billing_path,
    new_browser,
    own_domain,
    scim_member,
    signed_in_tenant,
    submit,
    unique_email,
    used_and_purchased,
    workspace,
)
from tests.oauth.helpers import OAuthTenant, csrf_token, make_admin, sign_in


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> OAuthTenant:
    return await signed_in_tenant(db, browser)


def ledger_rows(html: str) -> list[list[str]]:
    body = re.search(r'<section class="card" id="ledger".*?</section>', html, re.S)
    assert body
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(0), re.S)[1:]  # without the header
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td.*?</td>", r, re.S)] for r in rows]


async def test_page_shows_seat_use(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    await scim_member(db, tenant, unique_email(await own_domain(db, tenant)))
    r = await browser.get(billing_path(tenant))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert '<dd id="seats-used">1</dd>' in r.text
    assert '<dd id="seats-purchased">100</dd>' in r.text
    assert '<dd id="seats-free">99</dd>' in r.text
    assert "License auto-charge is <strong>off</strong>" in r.text
    assert 'aria-current="page">Billing &amp; seats' in r.text
    for label in ('for="count"', 'for="reason"', 'for="auto_charge"', 'for="max_seats"'):
        assert label in r.text
    # The seats the workspace was created with are its first ledger entry, by the operator who made it.
    assert [row[1:] for row in ledger_rows(r.text)] == [
        ["+100", "100", "initial purchase of 100 seat(s) · Bought by hand", "operator (CLI)"]
    ]
    # Its date and time stay on one line, however narrow the table.
    assert '<td class="when"><time datetime=' in r.text
    css = (await browser.get("/console/static/console.css")).text
    assert re.search(r"\.when \{[^}]*white-space: nowrap", css)


async def test_buy_seats(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    r = await submit(browser, billing_path(tenant), "buy", count="5", reason="new team")
    assert r.status_code == 303 and "notice=bought" in r.headers["location"]
    r = await submit(browser, billing_path(tenant), "buy", count=" 2 ", reason="")
    assert r.status_code == 303
    assert await used_and_purchased(db, tenant) == (0, 107)
    page = await browser.get(r.headers["location"])
    assert "Seats bought" in page.text and '<dd id="seats-purchased">107</dd>' in page.text
    rows = ledger_rows(page.text)
    # Newest first: when, how many, seats after, why, by whom.
    assert rows[0][1:] == [
        "+2",
        "107",
        "bought 2 seat(s) · Bought by hand",
        f"{tenant.admin_email} (console)",
    ]
    assert rows[1][1:] == ["+5", "105", "new team · Bought by hand", f"{tenant.admin_email} (console)"]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows[0][0])


@pytest.mark.parametrize(
    ("count", "message"),
    [
        ("0", "at least 1"),
        ("-3", "at least 1"),
        ("two", "whole number"),
        ("", "whole number"),
        ("1.5", "whole number"),
        ("2000000", "at most 1000000 seats"),
    ],
)
async def test_buy_seats_validation(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, count: str, message: str
) -> None:
    r = await submit(browser, billing_path(tenant), "buy", count=count)
    assert r.status_code == 400 and message in r.text
    assert 'id="count" name="count"' in r.text and 'aria-invalid="true"' in r.text
    assert await used_and_purchased(db, tenant) == (0, 100)


async def test_too_long_note_is_refused(browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    r = await submit(browser, billing_path(tenant), "buy", count="1", reason="x" * 201)
    assert r.status_code == 400 and "under 200 characters" in r.text


async def test_license_settings_are_the_scim_pages(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    r = await submit(browser, billing_path(tenant), "license", auto_charge="on", max_seats="120")
    assert r.status_code == 303 and r.headers["location"].endswith("?notice=license#license")
    ws = await workspace(db, tenant)
    assert ws.license_auto_charge and ws.license_max_seats == 120
    page = await browser.get(r.headers["location"])
    assert "License settings saved" in page.text and "up to 120 seats" in page.text
    scim = await browser.get(f"/console/workspaces/{tenant.key}/settings/advanced")
    assert 'name="max_seats" type="number" min="0" inputmode="numeric"\n             value="120"' in scim.text

    r = await submit(browser, billing_path(tenant), "license", max_seats="")
    assert r.status_code == 303
    ws = await workspace(db, tenant)
    assert not ws.license_auto_charge and ws.license_max_seats is None

    r = await submit(browser, billing_path(tenant), "license", auto_charge="on", max_seats="lots")
    assert r.status_code == 400 and "whole number" in r.text and 'aria-invalid="true"' in r.text
    assert not (await workspace(db, tenant)).license_auto_charge


async def test_auto_charge_entries_appear_in_the_ledger(db: Database, app: object) -> None:
    async with new_browser(app) as browser:
        tenant = await signed_in_tenant(db, browser, seats=0, auto_charge=True)
        email = unique_email(await own_domain(db, tenant))
        await scim_member(db, tenant, email)
        rows = ledger_rows((await browser.get(billing_path(tenant))).text)
        assert rows[0][1:] == ["+1", "1", f"auto-charge for {email} · Auto-charge", "Okta (test)"]


async def test_ledger_pages(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        for i in range(1, 26):
            await seat_service.buy_seats(session, ws, 1, actor="t", reason=f"purchase {i}", by=CLI_ACTOR)
    first = await browser.get(billing_path(tenant))
    rows = ledger_rows(first.text)
    assert len(rows) == 20 and rows[0][3].startswith("purchase 25") and rows[-1][3].startswith("purchase 6")
    assert (
        "1\u201320 of 26" in first.text and f'href="{billing_path(tenant)}?page=2" rel="next"' in first.text
    )
    second = await browser.get(billing_path(tenant), params={"page": "2"})
    rows = ledger_rows(second.text)
    assert [r[3].split(" ·")[0] for r in rows] == [
        "purchase 5",
        "purchase 4",
        "purchase 3",
        "purchase 2",
        "purchase 1",
        "initial purchase of 100 seat(s)",  # the seats the workspace was created with
    ]
    assert f'href="{billing_path(tenant)}" rel="prev"' in second.text


async def test_only_admins_of_the_workspace(db: Database, app: object, tenant: OAuthTenant) -> None:
    async with new_browser(app) as stranger:
        r = await stranger.get(billing_path(tenant))
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
        await sign_in(stranger, await make_admin(db))
        assert (await stranger.get(billing_path(tenant))).status_code == 404
        login = await stranger.get("/console/login", follow_redirects=True)
        for action, data in (("buy", {"count": "50"}), ("license", {"auto_charge": "on"})):
            r = await stranger.post(
                f"{billing_path(tenant)}/{action}", data={"csrf_token": csrf_token(login.text), **data}
            )
            assert r.status_code == 404
    assert await used_and_purchased(db, tenant) == (0, 100)
    assert not (await workspace(db, tenant)).license_auto_charge


async def test_forms_need_csrf(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    for action, data in (("buy", {"count": "50"}), ("license", {"auto_charge": "on"})):
        r = await browser.post(f"{billing_path(tenant)}/{action}", data=data)
        assert r.status_code == 403 and "This form has expired" in r.text
        r = await browser.post(f"{billing_path(tenant)}/{action}", data={"csrf_token": "forged", **data})
        assert r.status_code == 403
    assert await used_and_purchased(db, tenant) == (0, 100)
    assert not (await workspace(db, tenant)).license_auto_charge
