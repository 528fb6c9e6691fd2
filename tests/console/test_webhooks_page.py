"""Workspace > Webhooks: the endpoints that receive this workspace's events (never another workspace's),
their status, and the attempts to deliver this workspace's events only, in pages; read-only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete, insert

from provisio.db.engine import Database
from provisio.db.models import WebhookAttempt, WebhookEndpoint, utcnow
from provisio.domain import webhooks as rules
from tests.console.pages import new_browser, signed_in_tenant
from tests.oauth.helpers import OAuthTenant


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> AsyncIterator[OAuthTenant]:
    async with db.writing() as session:
        await session.execute(delete(WebhookEndpoint))
    yield await signed_in_tenant(db, browser)
    async with db.writing() as session:
        await session.execute(delete(WebhookEndpoint))


def _path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/webhooks"


async def _endpoint(db: Database, url: str, workspace_id: str | None, **values: object) -> str:
    async with db.writing() as session:
        checked = await rules.check_url(url, allow_private=True)
        created = await rules.create_endpoint(session, "test-secret", checked)
        created.endpoint.workspace_id = workspace_id
        for name, value in values.items():
            setattr(created.endpoint, name, value)
        return created.endpoint.id


async def test_the_page_shows_this_workspaces_endpoints_and_attempts_only(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, app: object
) -> None:
    empty = await browser.get(_path(tenant))
    assert empty.status_code == 200 and empty.headers["cache-control"] == "no-store"
    assert "No endpoint receives this workspace" in empty.text and "No deliveries yet" in empty.text
    nav = re.search(r'<nav class="workspace-nav".*?</nav>', empty.text, re.S)
    assert nav and f'href="{_path(tenant)}" aria-current="page">Webhooks' in nav.group(0)
    members = await browser.get(f"/console/workspaces/{tenant.key}/members")
    assert f'<a href="{_path(tenant)}">Webhooks</a>' in members.text

    async with new_browser(app) as other_browser:
        other = await signed_in_tenant(db, other_browser)
    mine = await _endpoint(
        db,
        "https://93.184.215.14/mine?token=s3cret",
        tenant.id,
        event_types=["member.created"],
        disabled_at=utcnow(),
        disabled_reason="10 attempts to deliver an event failed",
    )
    everyone = await _endpoint(db, "https://93.184.215.15/all", None)
    theirs = await _endpoint(db, "https://93.184.215.16/theirs", other.id)
    at = utcnow()
    base = {"event_type": "member.created", "attempt": 1, "duration_ms": 12, "outcome": "delivered"}
    async with db.writing() as session:
        await session.execute(
            insert(WebhookAttempt),
            [
                {
                    **base,
                    "endpoint_id": mine,
                    "event_id": "evt_mine",
                    "workspace_id": tenant.id,
                    "started_at": at,
                    "http_status": 500,
                    "outcome": "failed",
                    "response_body": "<script>alert(1)</script>" + "x" * 300,
                    "next_retry_at": at + timedelta(minutes=5),
                },
                {
                    **base,
                    "endpoint_id": everyone,
                    "event_id": "evt_ours",
                    "workspace_id": tenant.id,
                    "started_at": at,
                    "http_status": 204,
                },
                {
                    **base,
                    "endpoint_id": everyone,
                    "event_id": "evt_theirs",
                    "workspace_id": other.id,
                    "started_at": at,
                    "http_status": 204,
                    "response_body": "their answer",
                },
                {
                    **base,
                    "endpoint_id": theirs,
                    "event_id": "evt_theirs2",
                    "workspace_id": other.id,
                    "started_at": at,
                    "http_status": 204,
                },
            ],
        )
    r = await browser.get(_path(tenant))
    assert r.status_code == 200
    assert "https://93.184.215.14/mine?…" in r.text and "s3cret" not in r.text
    assert "https://93.184.215.15/all" in r.text and "93.184.215.16" not in r.text
    assert "Disabled" in r.text and "10 attempts to deliver an event failed" in r.text and "Active" in r.text
    assert "evt_mine" in r.text and "evt_ours" in r.text
    assert "evt_theirs" not in r.text and "their answer" not in r.text
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "12 ms" in r.text and "next try" in r.text
    # There are no forms: the page only reads.
    assert "<form" not in r.text.split('<nav class="workspace-nav"')[1].split("</main>")[0]

    # Another workspace's admin does not see this one's page.
    async with new_browser(app) as other_browser:
        await signed_in_tenant(db, other_browser)
        assert (await other_browser.get(_path(tenant))).status_code == 404


async def test_the_attempts_in_pages(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    endpoint = await _endpoint(db, "https://93.184.215.14/many", tenant.id)
    at = utcnow()
    async with db.writing() as session:
        await session.execute(
            insert(WebhookAttempt),
            [
                {
                    "endpoint_id": endpoint,
                    "event_id": f"evt_n{n:03d}",
                    "event_type": "member.updated",
                    "workspace_id": tenant.id,
                    "attempt": 1,
                    "started_at": at,
                    "duration_ms": 1,
                    "outcome": "delivered",
                    "http_status": 200,
                }
                for n in range(120)
            ],
        )
    seen: list[str] = []
    url: str | None = _path(tenant)
    while url:
        r = await browser.get(url)
        assert r.status_code == 200
        seen += re.findall(r"evt_n\d{3}", r.text)
        found = re.search(r'href="([^"]+)" rel="next"', r.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == [f"evt_n{n:03d}" for n in range(119, -1, -1)]
    assert (await browser.get(_path(tenant) + "?before=nonsense")).status_code == 200
