"""The *Connection status* panel at the top of Workspace settings > Advanced > SCIM, after real SCIM
requests and with events and refresh tokens at controlled times."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import OAuthClient, OAuthToken, ProvisioningEvent, utcnow
from provisio.domain.hashing import hash_secret
from provisio.domain.scim_methods import ScimMethod
from tests.console.pages import new_browser
from tests.oauth.helpers import OAuthTenant, csrf_token, make_oauth_tenant, okta_user, sign_in

TOKEN_RE = re.compile(r'id="bearer-token" type="text" readonly value="([^"]+)"')


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


def page_path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/settings/advanced"


def panel(html: str) -> str:
    start = html.index('id="connection-status"')
    return html[start : html.index("</section>", start)]


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:dd|p)>', html, re.S)
    assert match, element_id
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split())


async def _signed_in(db: Database, browser: httpx.AsyncClient, method: ScimMethod) -> OAuthTenant:
    tenant = await make_oauth_tenant(db, method, credentials=method is not ScimMethod.BEARER)
    assert (await sign_in(browser, tenant.admin_email)).status_code == 303
    return tenant


async def test_waiting_then_connected_after_real_requests(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    tenant = await _signed_in(db, browser, ScimMethod.BEARER)
    page = (await browser.get(page_path(tenant))).text
    status = panel(page)
    # At the top: before every settings card.
    assert page.index('id="connection-status"') < page.index('id="scim-enabled"')
    assert "Waiting for the first request" in text_of(status, "connection-state")
    assert text_of(status, "requests-24h") == "0" and text_of(status, "failures-24h") == "0"
    assert "not known until it sends a request" in text_of(status, "connection-idp")
    assert "?outcome=" not in status
    assert text_of(status, "credential-last-used") == "never"
    assert 'id="refresh-token"' not in status  # Authorization Code only

    opened = await browser.get(page_path(tenant))
    r = await browser.post(
        f"{page_path(tenant)}/scim/credentials", data={"csrf_token": csrf_token(opened.text)}
    )
    token = TOKEN_RE.search((await browser.get(r.headers["location"])).text)
    assert token
    headers = {"Authorization": f"Bearer {token.group(1)}", "User-Agent": "Okta SCIM Client 1.0.0"}
    user = f"ada-{uuid.uuid4().hex[:6]}@acme.example"
    created = await client.post(f"{tenant.scim_base}/Users", json=okta_user(user), headers=headers)
    assert created.status_code == 201, created.text
    again = await client.post(f"{tenant.scim_base}/Users", json=okta_user(user), headers=headers)
    assert again.status_code == 409

    status = panel((await browser.get(page_path(tenant))).text)
    assert text_of(status, "connection-state").startswith("Connected")
    assert text_of(status, "requests-24h") == "2" and text_of(status, "failures-24h") == "1"
    success = text_of(status, "last-success")
    assert "create, status 201" in success and "just now" in success
    failure = text_of(status, "last-failure")
    assert "status 409" in failure
    assert f'href="/console/workspaces/{tenant.key}/log?outcome=success"' in status
    assert f'href="/console/workspaces/{tenant.key}/log?outcome=failure"' in status
    assert "just now" in text_of(status, "credential-last-used")
    assert text_of(status, "connection-idp") == "Okta"
    # The links open the provisioning log filtered on that outcome.
    failures = await browser.get(f"/console/workspaces/{tenant.key}/log?outcome=failure")
    successes = await browser.get(f"/console/workspaces/{tenant.key}/log?outcome=success")
    assert failures.status_code == 200 and successes.status_code == 200
    assert "409" in failures.text and "already" in failures.text
    assert user in successes.text and "already" not in successes.text
    assert "bearer token" in success

    # A refused credential is a failure of this workspace too (still connected: a request succeeded).
    wrong = {"Authorization": "Bearer pvs_not-the-token", "User-Agent": "Okta SCIM Client 1.0.0"}
    assert (await client.get(f"{tenant.scim_base}/Users", headers=wrong)).status_code == 401
    status = panel((await browser.get(page_path(tenant))).text)
    assert text_of(status, "connection-state").startswith("Connected")
    assert "status 401" in text_of(status, "last-failure")
    assert text_of(status, "failures-24h") == "2"


async def test_no_success_in_a_day_and_the_failure_detail(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await _signed_in(db, browser, ScimMethod.CLIENT_CREDENTIALS)
    now = utcnow()
    async with db.writing() as session:
        for at, outcome, status, detail, agent in [
            (now - timedelta(hours=30), "success", 200, None, "Microsoft.Azure.AD.Provisioning/1.0"),
            (
                now - timedelta(hours=2),
                "failure",
                403,
                "No free seat in workspace Acme (25 of 25 used)",
                None,
            ),
        ]:
            session.add(
                ProvisioningEvent(
                    workspace_id=tenant.id,
                    at=at,
                    actor=f"OAuth client {tenant.client_id}",
                    action="replace",
                    outcome=outcome,
                    status=status,
                    detail=detail,
                    user_agent=agent,
                )
            )
            await session.flush()
    status = panel((await browser.get(page_path(tenant))).text)
    state = text_of(status, "connection-state")
    assert state.startswith("Not connected: no successful request since") and "1 day ago" in state
    assert text_of(status, "connection-idp") == "Microsoft Entra"
    assert text_of(status, "requests-24h") == "1" and text_of(status, "failures-24h") == "1"
    failure = text_of(status, "last-failure")
    assert "status 403" in failure and "No free seat in workspace Acme (25 of 25 used)" in failure
    assert "2 hours ago" in failure
    assert 'id="connection-polling"' not in status

    # Entra still gets tokens with nothing to change: the panel says so beside "not connected".
    async with db.writing() as session:
        client_pk = (
            await session.execute(select(OAuthClient.id).where(OAuthClient.client_id == tenant.client_id))
        ).scalar_one()
        session.add(
            OAuthToken(
                workspace_id=tenant.id,
                client_pk=client_pk,
                grant_type="client_credentials",
                family_id=str(uuid.uuid4()),
                access_token_hash=hash_secret(uuid.uuid4().hex),
                issued_at=now - timedelta(minutes=30),
                access_expires_at=now + timedelta(minutes=30),
            )
        )
    status = panel((await browser.get(page_path(tenant))).text)
    assert text_of(status, "connection-state").startswith("Not connected")
    assert "30 minutes ago" in text_of(status, "connection-polling")
    assert "30 minutes ago" in text_of(status, "credential-last-used")


async def _refresh_token(db: Database, tenant: OAuthTenant, expires_in: timedelta) -> None:
    now = utcnow()
    async with db.writing() as session:
        client_pk = (
            await session.execute(select(OAuthClient.id).where(OAuthClient.client_id == tenant.client_id))
        ).scalar_one()
        session.add(
            OAuthToken(
                workspace_id=tenant.id,
                client_pk=client_pk,
                grant_type="refresh_token",
                family_id=str(uuid.uuid4()),
                access_token_hash=hash_secret(uuid.uuid4().hex),
                refresh_token_hash=hash_secret(uuid.uuid4().hex),
                issued_at=now - timedelta(days=10),
                access_expires_at=now - timedelta(days=10) + timedelta(hours=1),
                refresh_expires_at=now + expires_in,
            )
        )


@pytest.mark.parametrize(
    ("expires_in", "warning"),
    [
        (timedelta(days=3), "expires on"),
        (timedelta(days=6, hours=23), "expires on"),
        (timedelta(days=20), None),
        (-timedelta(hours=1), "expired on"),
    ],
)
async def test_okta_refresh_token_expiry(
    db: Database, browser: httpx.AsyncClient, expires_in: timedelta, warning: str | None
) -> None:
    tenant = await _signed_in(db, browser, ScimMethod.AUTHORIZATION_CODE)
    status = panel((await browser.get(page_path(tenant))).text)
    assert "Okta has not authenticated yet" in text_of(status, "refresh-token")
    await _refresh_token(db, tenant, expires_in)
    status = panel((await browser.get(page_path(tenant))).text)
    refresh = text_of(status, "refresh-token")
    assert refresh.startswith("Rotated") and "10 days ago" in refresh
    if warning is None:
        assert 'id="refresh-warning"' not in status
        assert "expires if unused" in refresh
    else:
        alert = text_of(status, "refresh-warning")
        assert f"Okta's refresh token {warning}" in alert and "Authenticate with" in alert
