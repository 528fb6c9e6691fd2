"""Seats, license auto-charge and the one-workspace rule through SCIM, with Okta's PUT shapes and
Entra's PATCH shapes."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import SeatLedgerEntry, Workspace
from provisio.domain import seats as seat_service
from provisio.domain.host_events import CLI_ACTOR
from tests.conftest import Tenant, after_initial_purchase, make_tenant
from tests.domain.helpers import (
    entra_active,
    entra_email,
    okta_patch_active,
    okta_user,
    scim_error,
    unique_domain,
)


async def _state(db: Database, tenant: Tenant) -> tuple[int, int, list[SeatLedgerEntry]]:
    """(used, purchased, ledger oldest first without the workspace's initial purchase)."""
    async with db.reading() as session:
        ws = (await session.execute(select(Workspace).where(Workspace.id == tenant.id))).scalar_one()
        used = await seat_service.used_seats(session, ws.id)
        entries = after_initial_purchase(list(reversed(await seat_service.ledger(session, ws.id))))
        return used, ws.seats_purchased, entries


async def _count(client: httpx.AsyncClient, tenant: Tenant, user_name: str) -> int:
    r = await client.get(
        f"{tenant.base}/Users", params={"filter": f'userName eq "{user_name}"'}, headers=tenant.headers
    )
    return int(r.json()["totalResults"])


async def test_no_free_seat_is_403_and_nothing_is_created(client: httpx.AsyncClient, db: Database) -> None:
    domain = unique_domain("acme")
    tenant = await make_tenant(db, "Acme", seats=2, domains=(domain,), allow_other_domains=False)
    url, h = f"{tenant.base}/Users", tenant.headers
    ids = []
    for who in ("ada", "bob"):
        r = await client.post(url, json=okta_user(f"{who}@{domain}"), headers=h)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    r = await client.post(url, json=okta_user(f"cy@{domain}"), headers=h)
    detail = scim_error(r, 403)
    assert detail == (
        f"No free seat in workspace {tenant.name} (2 of 2 used) and license auto-charge is off: "
        "enable it or buy seats in Workspace settings"
    )
    assert await _count(client, tenant, f"cy@{domain}") == 0
    # An inactive member needs no seat.
    r = await client.post(url, json=okta_user(f"dormant@{domain}", active=False), headers=h)
    assert r.status_code == 201 and r.json()["active"] is False
    dormant = r.json()["id"]

    # Okta deactivates with PUT active=false: the seat is free again, the member stays visible.
    r = await client.put(f"{url}/{ids[0]}", json=okta_user(f"ada@{domain}", active=False), headers=h)
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await client.post(url, json=okta_user(f"cy@{domain}"), headers=h)).status_code == 201

    # Reactivating takes a seat again: refused through every path, and the member stays inactive.
    r = await client.put(f"{url}/{ids[0]}", json=okta_user(f"ada@{domain}", active=True), headers=h)
    assert scim_error(r, 403).startswith(f"No free seat in workspace {tenant.name} (2 of 2 used)")
    assert scim_error(await client.patch(f"{url}/{ids[0]}", json=entra_active(True), headers=h), 403)
    assert scim_error(await client.patch(f"{url}/{ids[0]}", json=okta_patch_active(True), headers=h), 403)
    assert scim_error(await client.patch(f"{url}/{dormant}", json=entra_active(True), headers=h), 403)
    assert (await client.get(f"{url}/{ids[0]}", headers=h)).json()["active"] is False

    # DELETE frees the seat too; then Entra's PATCH reactivation succeeds.
    assert (await client.delete(f"{url}/{ids[1]}", headers=h)).status_code == 204
    r = await client.patch(f"{url}/{ids[0]}", json=entra_active(True), headers=h)
    assert r.status_code == 200 and r.json()["active"] is True
    used, purchased, ledger = await _state(db, tenant)
    assert (used, purchased, ledger) == (2, 2, [])


async def test_auto_charge_buys_up_to_the_maximum(client: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_tenant(db, "Globex", seats=1, auto_charge=True, max_seats=3)
    url, h = f"{tenant.base}/Users", tenant.headers
    domain = unique_domain()
    made = []
    for who in ("ada", "bob", "cy"):
        r = await client.post(url, json=okta_user(f"{who}@{domain}"), headers=h)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    used, purchased, ledger = await _state(db, tenant)
    assert (used, purchased) == (3, 3)
    assert [(e.delta, e.seats_after, e.kind, e.reason) for e in ledger] == [
        (1, 2, "auto_charge", f"auto-charge for bob@{domain}"),
        (1, 3, "auto_charge", f"auto-charge for cy@{domain}"),
    ]
    assert all(e.actor == "bearer token test" for e in ledger)  # by which client

    r = await client.post(url, json=okta_user(f"dee@{domain}"), headers=h)
    assert scim_error(r, 403) == (
        f"No free seat in workspace {tenant.name} (3 of 3 used) and license auto-charge has reached its "
        "maximum of 3 seats: raise the maximum or buy seats in Workspace settings"
    )
    # Deactivation frees a seat but never lowers the purchased count; reactivation reuses the seat.
    r = await client.patch(f"{url}/{made[0]}", json=entra_active(False), headers=h)
    assert r.status_code == 200
    assert (await _state(db, tenant))[:2] == (2, 3)
    r = await client.put(f"{url}/{made[0]}", json=okta_user(f"ada@{domain}", active=True), headers=h)
    assert r.status_code == 200, r.text
    used, purchased, ledger = await _state(db, tenant)
    assert (used, purchased, len(ledger)) == (3, 3, 2)

    # Seats bought by hand go beyond the auto-charge maximum.
    async with db.writing() as session:
        ws = await seat_service.lock_workspace(session, tenant.id)
        await seat_service.buy_seats(session, ws, 2, actor="admin@globex.example", by=CLI_ACTOR)
    assert (await client.post(url, json=okta_user(f"dee@{domain}"), headers=h)).status_code == 201
    used, purchased, ledger = await _state(db, tenant)
    assert (used, purchased) == (4, 5) and ledger[-1].kind == "purchase" and ledger[-1].seats_after == 5


async def test_auto_charge_without_a_maximum(client: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_tenant(db, seats=0, auto_charge=True, max_seats=None)
    domain = unique_domain()
    for i in range(3):
        r = await client.post(
            f"{tenant.base}/Users", json=okta_user(f"u{i}@{domain}"), headers=tenant.headers
        )
        assert r.status_code == 201, r.text
    used, purchased, ledger = await _state(db, tenant)
    assert (used, purchased, [e.seats_after for e in ledger]) == (3, 3, [1, 2, 3])


async def test_one_workspace_per_person(client: httpx.AsyncClient, db: Database) -> None:
    first = await make_tenant(db, "Initech")
    second = await make_tenant(db, "Umbrella")
    email = f"ada@{unique_domain()}"
    r = await client.post(f"{first.base}/Users", json=okta_user(email), headers=first.headers)
    assert r.status_code == 201
    in_first = r.json()["id"]

    # Another workspace cannot provision them, whatever the case of the address; the detail says why
    # without naming the other workspace.
    r = await client.post(f"{second.base}/Users", json=okta_user(email.upper()), headers=second.headers)
    detail = scim_error(r, 409, "uniqueness")
    assert "another workspace" in detail and first.name not in detail and first.key not in detail
    assert await _count(client, second, email.upper()) == 0

    # Created inactive is fine (no membership is taken); activating it is the same conflict.
    r = await client.post(f"{second.base}/Users", json=okta_user(email, active=False), headers=second.headers)
    assert r.status_code == 201
    in_second = r.json()["id"]
    r = await client.patch(
        f"{second.base}/Users/{in_second}", json=entra_active(True), headers=second.headers
    )
    scim_error(r, 409, "uniqueness")

    # Once deactivated in the first workspace, the second may take them...
    r = await client.put(
        f"{first.base}/Users/{in_first}", json=okta_user(email, active=False), headers=first.headers
    )
    assert r.status_code == 200
    r = await client.put(f"{second.base}/Users/{in_second}", json=okta_user(email), headers=second.headers)
    assert r.status_code == 200 and r.json()["active"] is True
    # ...and then the first cannot reactivate them (Okta's PUT, Okta's PATCH).
    r = await client.put(f"{first.base}/Users/{in_first}", json=okta_user(email), headers=first.headers)
    scim_error(r, 409, "uniqueness")
    r = await client.patch(
        f"{first.base}/Users/{in_first}", json=okta_patch_active(True), headers=first.headers
    )
    scim_error(r, 409, "uniqueness")

    # Changing someone's e-mail to a person active elsewhere is refused too (Entra's PATCH).
    r = await client.post(
        f"{first.base}/Users", json=okta_user(f"bob@{unique_domain()}"), headers=first.headers
    )
    bob = r.json()["id"]
    r = await client.patch(f"{first.base}/Users/{bob}", json=entra_email(email), headers=first.headers)
    scim_error(r, 409, "uniqueness")

    # Deleted in the second workspace: the first can have them back.
    assert (
        await client.delete(f"{second.base}/Users/{in_second}", headers=second.headers)
    ).status_code == 204
    r = await client.put(f"{first.base}/Users/{in_first}", json=okta_user(email), headers=first.headers)
    assert r.status_code == 200 and r.json()["active"] is True


async def test_failures_are_in_the_provisioning_log(client: httpx.AsyncClient, db: Database) -> None:
    from provisio.db.models import ProvisioningEvent

    tenant = await make_tenant(db, seats=0)
    r = await client.post(
        f"{tenant.base}/Users", json=okta_user(f"x@{unique_domain()}"), headers=tenant.headers
    )
    detail = scim_error(r, 403)
    async with db.reading() as session:
        events = (
            (
                await session.execute(
                    select(ProvisioningEvent).where(ProvisioningEvent.workspace_id == tenant.id)
                )
            )
            .scalars()
            .all()
        )
    assert [(e.outcome, e.status, e.detail) for e in events] == [("failure", 403, detail)]
