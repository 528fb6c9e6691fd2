"""Workspace > Notifications through its forms (no JavaScript): the digest window, extra addresses added
and removed, who unsubscribed; CSRF, and another workspace's page out of reach."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from provisio.db.engine import Database
from provisio.domain import notifications as notification_service
from tests.console.pages import new_browser, signed_in_tenant, submit
from tests.oauth.helpers import OAuthTenant, csrf_token


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> OAuthTenant:
    return await signed_in_tenant(db, browser)


def page(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/notifications"


async def _extras(db: Database, tenant: OAuthTenant) -> list[str]:
    async with db.reading() as session:
        return [r.email for r in await notification_service.extra_recipients(session, tenant.id)]


async def test_the_page_lists_admins_and_is_in_the_workspace_nav(
    browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    r = await browser.get(page(tenant))
    assert r.status_code == 200
    assert f'<a href="{page(tenant)}" aria-current="page">Notifications</a>' in r.text
    assert tenant.admin_email in r.text
    assert "No extra addresses" in r.text and "Nobody has unsubscribed" in r.text
    members = await browser.get(f"/console/workspaces/{tenant.key}/members")
    assert f'<a href="{page(tenant)}">Notifications</a>' in members.text


async def test_add_and_remove_an_address(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    r = await submit(browser, page(tenant), "add", email=" Helpdesk@Acme.example ")
    assert r.status_code == 303 and r.headers["location"].endswith("#add-address")
    shown = await browser.get(r.headers["location"])
    assert "Helpdesk@Acme.example now gets this workspace&#39;s failure e-mails." in shown.text
    assert await _extras(db, tenant) == ["Helpdesk@Acme.example"]

    again = await submit(browser, page(tenant), "add", email="helpdesk@acme.example")
    assert again.status_code == 409 and "already receives" in again.text
    bad = await submit(browser, page(tenant), "add", email="not an address")
    assert bad.status_code == 400 and "is not an e-mail address" in bad.text
    assert 'value="not an address"' in bad.text  # the value is kept next to the error

    removed = await submit(browser, page(tenant), "remove", email="helpdesk@acme.example")
    assert removed.status_code == 303
    assert await _extras(db, tenant) == []
    missing = await submit(browser, page(tenant), "remove", email="helpdesk@acme.example")
    assert missing.status_code == 404


async def test_the_digest_window(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    r = await submit(browser, page(tenant), "window", digest_minutes="15")
    assert r.status_code == 303
    async with db.reading() as session:
        assert await notification_service.digest_seconds(session, tenant.id) == 900
    assert 'value="15"' in (await browser.get(page(tenant))).text
    for wrong in ("abc", "0", "99999", "-5", "\uff11\uff15"):
        refused = await submit(browser, page(tenant), "window", digest_minutes=wrong)
        assert refused.status_code == 400, wrong
    assert (await submit(browser, page(tenant), "window", digest_minutes="")).status_code == 303
    async with db.reading() as session:
        assert await notification_service.digest_seconds(session, tenant.id) is None


async def test_opted_out_recipients_are_shown(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    async with db.writing() as session:
        await notification_service.opt_out(session, tenant.id, tenant.admin_email)
        await notification_service.opt_out(session, tenant.id, tenant.admin_email)  # idempotent
    r = await browser.get(page(tenant))
    assert "Unsubscribed</span>" in r.text and "Nobody has unsubscribed" not in r.text


async def test_forms_need_the_csrf_token(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    r = await browser.post(f"{page(tenant)}/add", data={"email": "x@acme.example"})
    assert r.status_code == 403
    assert await _extras(db, tenant) == []


async def test_another_workspace_is_out_of_reach(
    db: Database, browser: httpx.AsyncClient, app: object
) -> None:
    mine = await signed_in_tenant(db, browser)
    async with new_browser(app) as other_browser:
        theirs = await signed_in_tenant(db, other_browser)
    assert (await browser.get(page(theirs))).status_code == 404
    token = csrf_token((await browser.get(page(mine))).text)
    for action, data in (("add", {"email": "spy@evil.example"}), ("window", {"digest_minutes": "60"})):
        r = await browser.post(f"{page(theirs)}/{action}", data={"csrf_token": token, **data})
        assert r.status_code == 404
    assert await _extras(db, theirs) == []
    async with db.reading() as session:
        assert await notification_service.digest_seconds(session, theirs.id) is None


async def test_signed_out_the_page_asks_to_sign_in(app: object, tenant: OAuthTenant) -> None:
    async with new_browser(app) as stranger:
        r = await stranger.get(page(tenant))
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


async def test_an_unsubscribe_link_that_is_not_valid(app: object) -> None:
    async with new_browser(app) as stranger:
        r = await stranger.get("/console/notifications/unsubscribe/abc.def")
        assert r.status_code == 404 and "not valid" in r.text
        r = await stranger.get("/console/notifications/unsubscribe/")
        assert r.status_code == 404


@pytest.mark.parametrize("bad", ["ada\x00@acme.example", "ada\x07@acme.example", "a,b@acme.example"])
async def test_a_control_character_or_separator_is_a_clear_page(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, bad: str
) -> None:
    """NUL reached PostgreSQL, which cannot take it (a 500); a comma made two recipients of one."""
    added = await submit(browser, page(tenant), "add", email=bad)
    assert added.status_code == 400 and "is not an e-mail address" in added.text
    assert added.headers["content-type"].startswith("text/html")
    removed = await submit(browser, page(tenant), "remove", email=bad)
    assert removed.status_code == 404 and removed.headers["content-type"].startswith("text/html")
    assert await _extras(db, tenant) == []


async def test_an_invited_admin_without_a_password_is_not_listed_as_a_recipient(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    admins = f"/console/workspaces/{tenant.key}/admins"
    invited = await submit(browser, admins, "add", email="new@acme.example")
    assert invited.status_code == 303
    r = await browser.get(page(tenant))
    assert tenant.admin_email in r.text and "new@acme.example" not in r.text
