"""Changes an admin makes in the console tell the host application too, in the admin's name: members
added, deactivated and reactivated, seats bought, SCIM turned on and off."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import Admin
from provisio.domain import host_events
from provisio.domain.host_events import Position, StoredEvent
from tests.console.pages import (
    billing_path,
    member_by_user_name,
    members_path,
    new_browser,
    own_domain,
    signed_in_tenant,
    submit,
    unique_email,
)
from tests.event_reading import events_after, tail
from tests.oauth.helpers import OAuthTenant, csrf_token


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as client:
        yield client


async def _admin(db: Database, tenant: OAuthTenant) -> dict[str, str | None]:
    async with db.reading() as session:
        admin_id = (
            await session.execute(select(Admin.id).where(Admin.email == tenant.admin_email))
        ).scalar_one()
    return {"type": "admin", "id": admin_id, "name": tenant.admin_email}


async def _since(db: Database, tenant: OAuthTenant, start: Position) -> list[StoredEvent]:
    return await events_after(db, start, tenant.id)


async def test_members_added_and_deactivated_by_hand(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await signed_in_tenant(db, browser, seats=1, auto_charge=True)
    admin = await _admin(db, tenant)
    start = await tail(db)
    email = unique_email(await own_domain(db, tenant), "ken")
    assert (
        await submit(browser, members_path(tenant), "add", email=email, name="Ken Thompson")
    ).status_code == 303
    member = await member_by_user_name(db, tenant, email)
    [created] = await _since(db, tenant, start)
    assert created.type == host_events.MEMBER_CREATED and created.actor == admin
    snapshot = created.data["member"]
    assert (snapshot["id"], snapshot["userName"], snapshot["active"]) == (member.id, email, True)
    assert snapshot["name"] == {"formatted": "Ken Thompson"}

    assert (await submit(browser, members_path(tenant), "deactivate", member_id=member.id)).status_code == 303
    again = await submit(browser, members_path(tenant), "deactivate", member_id=member.id)
    assert "notice=unchanged" in again.headers["location"]
    # The freed seat goes to a second member; reactivating Ken has auto-charge buy one more.
    other = unique_email(await own_domain(db, tenant), "dmr")
    assert (
        await submit(browser, members_path(tenant), "add", email=other, name="Dennis Ritchie")
    ).status_code == 303
    assert (await submit(browser, members_path(tenant), "reactivate", member_id=member.id)).status_code == 303
    events = (await _since(db, tenant, start))[1:]
    assert [e.type for e in events] == [
        host_events.MEMBER_DEACTIVATED,
        host_events.MEMBER_CREATED,
        host_events.SEATS_PURCHASED,
        host_events.MEMBER_REACTIVATED,
    ]
    assert all(e.actor == admin for e in events)
    assert events[0].data["changed"] == ["active"] and events[0].data["member"]["active"] is False
    assert events[2].data == {
        "quantity": 1,
        "total": 2,
        "how": "auto_charge",
        "reason": f"auto-charge for {email}",
    }
    assert events[3].data["member"]["active"] is True


async def test_seats_bought_and_scim_switched_in_the_console(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await signed_in_tenant(db, browser)
    admin = await _admin(db, tenant)
    start = await tail(db)
    assert (
        await submit(browser, billing_path(tenant), "buy", count="5", reason="new team")
    ).status_code == 303
    scim = f"/console/workspaces/{tenant.key}/settings/advanced"
    for enabled in ("on", "on", ""):
        page = await browser.get(scim)
        r = await browser.post(
            f"{scim}/scim/enabled", data={"csrf_token": csrf_token(page.text), "enabled": enabled}
        )
        assert r.status_code == 303, r.text
    events = await _since(db, tenant, start)
    assert [(e.type, e.data) for e in events] == [
        (host_events.SEATS_PURCHASED, {"quantity": 5, "total": 105, "how": "manual", "reason": "new team"}),
        (host_events.WORKSPACE_SCIM_ENABLED, {"scim_enabled": True, "method": "bearer"}),
        (host_events.WORKSPACE_SCIM_DISABLED, {"scim_enabled": False, "method": "bearer"}),
    ]
    assert all(e.actor == admin for e in events)
