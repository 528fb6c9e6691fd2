"""A disabled workspace in the console: its admins still sign in and read every page, each page says the
workspace is disabled, and every form that would change it is answered with the page and the reason,
changing nothing; once the workspace is enabled the same forms work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from provisio.db.engine import Database
from provisio.db.models import (
    Admin,
    Member,
    NotificationRecipient,
    OAuthClient,
    OAuthRedirectUri,
    ScimToken,
    SeatLedgerEntry,
    Workspace,
    WorkspaceAdmin,
    WorkspaceDomain,
)
from tests.console.pages import new_browser, own_domain, signed_in_tenant
from tests.disabling import disable, enable
from tests.oauth.helpers import OAuthTenant, csrf_token, make_oauth_tenant, sign_in

BANNER = 'id="workspace-disabled"'
REFUSED = "is disabled: nothing about it can be changed"
PAGES = (
    "settings/advanced",
    "members",
    "log",
    "settings/billing",
    "settings/domains",
    "admins",
    "notifications",
)


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


async def _snapshot(db: Database, workspace_id: str) -> tuple[Any, ...]:
    """Everything a console form can change about the workspace."""
    async with db.reading() as session:
        ws = await session.get(Workspace, workspace_id)
        assert ws is not None
        row = (
            ws.name,
            ws.scim_enabled,
            ws.scim_auth_method,
            ws.license_auto_charge,
            ws.license_max_seats,
            ws.seats_purchased,
            ws.allow_other_domains,
            ws.disabled_at,
        )
        counts = []
        for table in (
            Member,
            WorkspaceDomain,
            WorkspaceAdmin,
            OAuthRedirectUri,
            OAuthClient,
            ScimToken,
            SeatLedgerEntry,
            NotificationRecipient,
        ):
            query = select(func.count()).select_from(table).where(table.workspace_id == workspace_id)
            counts.append(await session.scalar(query))
        verified = await session.scalar(
            select(func.count()).where(
                WorkspaceDomain.workspace_id == workspace_id, WorkspaceDomain.last_checked_at.is_not(None)
            )
        )
    return (*row, *counts, verified)


async def _forms(db: Database, tenant: OAuthTenant) -> list[tuple[str, dict[str, str]]]:
    """(path of the POST, its fields) for every form of the workspace's pages."""
    base = f"/console/workspaces/{tenant.key}"
    domain = await own_domain(db, tenant)
    async with db.reading() as session:
        admin_id = await session.scalar(select(Admin.id).where(Admin.email == tenant.admin_email))
    scim = f"{base}/settings/advanced/scim"
    return [
        (f"{scim}/enabled", {"enabled": "on"}),
        (f"{scim}/method", {"method": "client_credentials", "confirm": "yes"}),
        (f"{scim}/redirect-uris", {"uri": "https://idp.example/callback"}),
        (f"{scim}/redirect-uris/remove", {"uri": "https://idp.example/callback"}),
        (
            f"{scim}/okta-callback",
            {"okta_admin_url": "https://acme-admin.okta.com/admin/app/acme_app_1/instance/0oa1/"},
        ),
        (f"{scim}/license", {"auto_charge": "on", "max_seats": "50"}),
        (f"{scim}/credentials", {"confirm": "yes", "window": "none"}),
        (f"{base}/members/add", {"email": f"grace@{domain}", "name": "Grace Hopper"}),
        (f"{base}/settings/billing/buy", {"count": "5", "reason": "more"}),
        (f"{base}/settings/billing/license", {"auto_charge": "on", "max_seats": ""}),
        (f"{base}/settings/domains/add", {"domain": "other-example.test"}),
        (f"{base}/settings/domains/verify", {"domain": domain}),
        (f"{base}/settings/domains/allow-other-domains", {"allow_other_domains": "on"}),
        (f"{base}/settings/domains/remove", {"domain": domain}),
        (f"{base}/admins/add", {"email": "new-admin@acme.example"}),
        (f"{base}/admins/remove", {"admin_id": str(admin_id)}),
        (f"{base}/notifications/window", {"digest_minutes": "30"}),
        (f"{base}/notifications/add", {"email": "alerts@acme.example"}),
        (f"{base}/notifications/remove", {"email": "alerts@acme.example"}),
    ]


async def test_pages_say_it_is_disabled_and_every_form_is_refused(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await signed_in_tenant(db, browser)
    base = f"/console/workspaces/{tenant.key}"
    settings = await browser.get(f"{base}/settings/advanced")
    assert settings.status_code == 200 and BANNER not in settings.text
    await disable(db, tenant.key)
    before = await _snapshot(db, tenant.id)

    for page in PAGES:
        r = await browser.get(f"{base}/{page}")
        assert r.status_code == 200, (page, r.text)
        assert BANNER in r.text and "This workspace is disabled" in r.text, page
    token = csrf_token((await browser.get(f"{base}/settings/advanced")).text)
    for path, fields in await _forms(db, tenant):
        r = await browser.post(path, data={"csrf_token": token, **fields})
        assert r.status_code in (400, 409), (path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("text/html"), path
        assert REFUSED in r.text and BANNER in r.text, path
    assert await _snapshot(db, tenant.id) == before  # nothing was changed, nothing half-written

    await enable(db, tenant.key)
    r = await browser.get(f"{base}/settings/billing")
    assert r.status_code == 200 and BANNER not in r.text
    r = await browser.post(
        f"{base}/settings/billing/buy", data={"csrf_token": csrf_token(r.text), "count": "5", "reason": "x"}
    )
    assert r.status_code == 303, r.text
    assert (await _snapshot(db, tenant.id))[5] == before[5] + 5  # seats_purchased


async def test_admins_still_sign_in_and_other_workspaces_are_not_touched(db: Database, app: object) -> None:
    disabled = await make_oauth_tenant(db, name="Disabled Co")
    neighbour = await make_oauth_tenant(db, name="Neighbour Co")
    await disable(db, disabled.key)
    async with new_browser(app) as browser:
        signed = await sign_in(browser, disabled.admin_email)
        assert signed.status_code == 303
        home = await browser.get("/console/", follow_redirects=True)
        assert home.status_code == 200 and BANNER in home.text
    async with new_browser(app) as browser:
        assert (await sign_in(browser, neighbour.admin_email)).status_code == 303
        page = await browser.get(f"/console/workspaces/{neighbour.key}/settings/billing")
        assert page.status_code == 200 and BANNER not in page.text
        r = await browser.post(
            f"/console/workspaces/{neighbour.key}/settings/billing/buy",
            data={"csrf_token": csrf_token(page.text), "count": "1"},
        )
        assert r.status_code == 303, r.text
