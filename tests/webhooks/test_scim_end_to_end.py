"""End to end: SCIM requests through the app (Okta's and Entra's shapes) become member events that a
running worker delivers to a real receiver, each once, in order, signed; the events API shows the same."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from standardwebhooks import Webhook

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage
from provisio.domain import host_events
from provisio.notify import outbox
from tests.conftest import make_tenant
from tests.domain.helpers import entra_active, okta_patch_active, okta_user
from tests.notify.conftest import eventually, running
from tests.webhooks.conftest import endpoint_row, register, worker
from tests.webhooks.receiver import Receiver

LIFECYCLE = [
    host_events.MEMBER_CREATED,
    host_events.MEMBER_UPDATED,
    host_events.MEMBER_DEACTIVATED,
    host_events.MEMBER_REACTIVATED,
    host_events.MEMBER_DELETED,
]


async def _nothing_pending(db: Database) -> bool:
    async with db.reading() as session:
        pending = await session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.kind == outbox.WEBHOOK, *outbox.pending())
        )
        return not pending.all()


async def test_a_scim_lifecycle_reaches_the_receiver_once_each_in_order_signed(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    tenant = await make_tenant(db, "EndToEnd")
    endpoint = await register(private_client, api, f"{receiver.url}/e2e", workspace=tenant.key)
    created_at = (await endpoint_row(db, endpoint["id"])).created_at
    users = f"{tenant.base}/Users"
    h = {**tenant.headers, "Content-Type": "application/scim+json"}
    email = f"ada@{tenant.key}.test"

    async with running(worker(db, wh_settings)):
        r = await private_client.post(users, json=okta_user(email), headers=h)
        assert r.status_code == 201, r.text
        scim_id = r.json()["id"]
        r = await private_client.put(f"{users}/{scim_id}", json=okta_user(email, given="Augusta"), headers=h)
        assert r.status_code == 200 and r.json()["name"]["givenName"] == "Augusta", r.text
        r = await private_client.patch(f"{users}/{scim_id}", json=entra_active(False), headers=h)
        assert r.status_code == 200 and r.json()["active"] is False, r.text
        r = await private_client.patch(f"{users}/{scim_id}", json=okta_patch_active(True), headers=h)
        assert r.status_code == 200 and r.json()["active"] is True, r.text
        assert (await private_client.delete(f"{users}/{scim_id}", headers=h)).status_code == 204
        await eventually(lambda: len(receiver.answered()) >= len(LIFECYCLE))
        await eventually(lambda: _nothing_pending(db))  # any redelivery would have happened by now

    async with db.reading() as session:
        stored = await host_events.read_after(session, limit=10_000, workspace_id=tenant.id)
    written = [e.id for e in stored if e.occurred_at >= created_at]
    received = [x.headers["webhook-id"] for x in receiver.answered()]
    delivered = list(dict.fromkeys(received))
    duplicated = len(received) - len(delivered)
    lost = len(set(written) - set(delivered))
    print(
        f"e2e webhooks: {len(written)} events written, {len(delivered)} delivered, "
        f"{duplicated} duplicated, {lost} lost"
    )
    assert duplicated == lost == 0
    assert delivered == written and len(receiver.requests) == len(LIFECYCLE)

    events: list[dict[str, Any]] = [
        Webhook(endpoint["secret"]).verify(x.body, x.headers) for x in receiver.answered()
    ]
    assert [e["type"] for e in events] == LIFECYCLE
    assert [e["id"] for e in events] == delivered
    assert all(e["data"]["member"]["id"] == scim_id for e in events)
    assert all(e["workspace"] == tenant.key for e in events)

    r = await private_client.get("/api/v1/events", params={"workspace": tenant.key}, headers=api)
    assert r.status_code == 200, r.text
    # The workspace's own first events (its seats, SCIM on) came before the endpoint; then these five.
    earlier = [e.id for e in stored if e.occurred_at < created_at]
    assert [e["id"] for e in r.json()["data"]] == [*earlier, *delivered]
