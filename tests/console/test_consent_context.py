"""The pages around the consent page say where the admin is: the sign-in page in front of it names the
identity provider and the workspace asking, an OAuth error page links back to the SCIM settings, and
each workspace page's breadcrumb is links."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from provisio.db.engine import Database
from tests.console.pages import billing_path, domains_path, members_path, new_browser, signed_in_tenant
from tests.oauth.helpers import OKTA_CALLBACK, make_oauth_tenant, sign_in


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as b:
        yield b


async def test_the_sign_in_page_names_who_asks_for_which_workspace(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    query = {"response_type": "code", "client_id": tenant.client_id, "redirect_uri": OKTA_CALLBACK}
    r = await browser.get(f"{tenant.authorization_path}?{urlencode(query)}")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
    page = await browser.get(r.headers["location"])
    assert page.status_code == 200
    assert 'id="asking"' in page.text
    assert "Okta asks for access to the workspace" in page.text and tenant.name in page.text


async def test_the_sign_in_page_says_nothing_of_unknown_clients(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    other = await make_oauth_tenant(db)
    for client_id, path in (
        ("pvc_unknown", tenant.authorization_path),
        (other.client_id, tenant.authorization_path),  # a client of another workspace
    ):
        query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": OKTA_CALLBACK})
        page = await browser.get("/console/login", params={"next": f"{path}?{query}"})
        assert page.status_code == 200
        assert 'id="asking"' not in page.text
        assert other.name not in page.text and tenant.name not in page.text


async def test_an_oauth_error_page_links_back_to_the_scim_settings(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    params = {
        "response_type": "code",
        "client_id": tenant.client_id,
        "redirect_uri": "https://evil.example/cb",
    }
    r = await browser.get(tenant.authorization_path, params=params)
    assert r.status_code == 400
    assert f'href="/console/workspaces/{tenant.key}/settings/advanced"' in r.text
    r = await browser.get("/oauth/authorize", params=params)
    assert r.status_code == 400 and 'href="/console/"' in r.text


async def test_breadcrumbs_are_links(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await signed_in_tenant(db, browser)
    base = f"/console/workspaces/{tenant.key}"
    for path in (
        members_path(tenant),
        billing_path(tenant),
        domains_path(tenant),
        f"{base}/settings/advanced",
    ):
        page = await browser.get(path)
        assert page.status_code == 200, path
        crumbs = page.text.split('class="breadcrumb"', 1)[1].split("</nav>", 1)[0]
        assert '<a href="/console/">Workspaces</a>' in crumbs
        assert f'<a href="{base}/settings/advanced">' in crumbs
        assert 'aria-current="page"' in crumbs
