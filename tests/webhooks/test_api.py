"""``/api/v1/webhook-endpoints``: operator keys only, problem documents for every refusal, the secret shown
once and stored sealed, cursor pages, changes checked like a new endpoint."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage, WebhookEndpoint, utcnow
from provisio.domain import api_keys, host_events
from provisio.domain import webhooks as rules
from provisio.notify import webhooks as delivery
from tests.api.conftest import new_key
from tests.api.test_auth_and_problems import problem
from tests.conftest import make_tenant
from tests.webhooks.conftest import ENDPOINTS, emit, register

PUBLIC = "https://93.184.215.14/hooks"  # an IP literal: registering it looks nothing up


async def test_a_missing_wrong_or_revoked_key_is_refused_on_every_route(
    client: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    created = await register(client, api, PUBLIC)
    paths = [
        ("post", ENDPOINTS),
        ("get", ENDPOINTS),
        ("get", f"{ENDPOINTS}/{created['id']}"),
        ("patch", f"{ENDPOINTS}/{created['id']}"),
        ("delete", f"{ENDPOINTS}/{created['id']}"),
        ("post", f"{ENDPOINTS}/{created['id']}/enable"),
        ("post", f"{ENDPOINTS}/{created['id']}/rotate-secret"),
        ("get", f"{ENDPOINTS}/{created['id']}/deliveries"),
        ("post", f"{ENDPOINTS}/{created['id']}/replay"),
        ("post", f"{ENDPOINTS}/{created['id']}/test"),
    ]
    issued = await new_key(db, "revoked soon")
    async with db.writing() as session:
        await api_keys.revoke_key(session, issued.id)
    for headers in ({}, {"Authorization": "Bearer pvk_wrong"}, {"Authorization": f"Bearer {issued.key}"}):
        for method, path in paths:
            r = await client.request(method, path, json={"url": PUBLIC}, headers=headers)
            problem(r, 401)
            assert r.headers["www-authenticate"].startswith("Bearer")
    # Nothing happened meanwhile.
    assert (await client.get(f"{ENDPOINTS}/{created['id']}", headers=api)).status_code == 200


async def test_create_read_list_change_delete(
    client: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    tenant = await make_tenant(db, "Hooks")
    r = await client.post(
        ENDPOINTS,
        json={
            "url": PUBLIC,
            "workspace": tenant.key,
            "event_types": ["member.created"],
            "description": " CRM ",
        },
        headers=api,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"{ENDPOINTS}/{created['id']}"
    assert created["id"].startswith("we_") and created["secret"].startswith("whsec_")
    assert (created["workspace"], created["event_types"], created["description"]) == (
        tenant.key,
        ["member.created"],
        "CRM",
    )
    assert created["disabled"] is False and created["previous_secret_expires_at"] is None

    # Stored sealed: neither the secret nor its base64 is in the row, and it opens with the key.
    async with db.reading() as session:
        row = await session.get(WebhookEndpoint, created["id"])
    assert row is not None
    raw = created["secret"].removeprefix("whsec_")
    assert raw not in row.secret_sealed and created["secret"] not in row.secret_sealed
    assert rules.unseal("test-secret", row.id, rules.CURRENT, row.secret_sealed) == created["secret"]

    got = (await client.get(f"{ENDPOINTS}/{created['id']}", headers=api)).json()
    assert "secret" not in got and got == {k: v for k, v in created.items() if k != "secret"}

    r = await client.patch(
        f"{ENDPOINTS}/{created['id']}",
        json={"event_types": [], "description": "all of them", "url": "https://93.184.215.15/v2"},
        headers=api,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["event_types"], r.json()["url"], r.json()["description"]) == (
        [],
        "https://93.184.215.15/v2",
        "all of them",
    )

    others = [await register(client, api, f"{PUBLIC}/{n}") for n in range(4)]
    seen: list[str] = []
    after = ""
    while True:
        page = (await client.get(ENDPOINTS, params={"limit": 2, "after": after}, headers=api)).json()
        seen += [e["id"] for e in page["items"]]
        assert all("secret" not in e for e in page["items"])
        if page["next_cursor"] is None:
            break
        after = page["next_cursor"]
    assert seen == [created["id"], *(o["id"] for o in others)]  # oldest first, no repeats, no gaps

    assert (await client.delete(f"{ENDPOINTS}/{created['id']}", headers=api)).status_code == 204
    problem(await client.get(f"{ENDPOINTS}/{created['id']}", headers=api), 404)
    problem(await client.delete(f"{ENDPOINTS}/{created['id']}", headers=api), 404)


async def test_event_types_and_fields_are_checked(client: httpx.AsyncClient, api: dict[str, str]) -> None:
    body = problem(
        await client.post(ENDPOINTS, json={"url": PUBLIC, "event_types": ["member.exploded"]}, headers=api),
        422,
    )
    assert body["errors"][0]["field"] == "event_types" and "member.exploded" in body["errors"][0]["detail"]
    for bad in (
        {"url": PUBLIC, "workspace": "no-such-workspace"},
        {"url": PUBLIC, "colour": "blue"},
        {"event_types": []},
        {"url": PUBLIC, "event_types": "member.created"},
        {"url": PUBLIC, "description": "x" * 501},
        {"url": "x" * 2001},
        {"url": "https://exa\x00mple.com/"},
    ):
        problem(await client.post(ENDPOINTS, json=bad, headers=api), 422)
    omitted = await register(client, api, PUBLIC)
    assert omitted["event_types"] == []  # every type
    every = await register(client, api, PUBLIC, event_types=sorted(host_events.EVENT_TYPES) * 1)
    assert every["event_types"] == sorted(host_events.EVENT_TYPES)
    problem(
        await client.patch(f"{ENDPOINTS}/{omitted['id']}", json={"event_types": ["nope"]}, headers=api), 422
    )
    problem(
        await client.patch(
            f"{ENDPOINTS}/{omitted['id']}", json={"url": "http://93.184.215.14/"}, headers=api
        ),
        422,
    )
    problem(
        await client.post(
            f"{ENDPOINTS}/{omitted['id']}/rotate-secret", json={"grace_seconds": -1}, headers=api
        ),
        422,
    )
    problem(
        await client.get(f"{ENDPOINTS}/{omitted['id']}/deliveries", params={"status": "maybe"}, headers=api),
        422,
    )
    problem(
        await client.get(f"{ENDPOINTS}/{omitted['id']}/deliveries", params={"after": "x1"}, headers=api), 422
    )
    problem(await client.get(f"{ENDPOINTS}/we_missing", headers=api), 404)
    problem(await client.get(f"{ENDPOINTS}/we_{'x' * 100}", headers=api), 404)
    r = await client.put(f"{ENDPOINTS}/{omitted['id']}", json={}, headers=api)
    problem(r, 405)
    assert set(r.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}


async def test_enable_and_replay_refusals(
    client: httpx.AsyncClient, db: Database, api: dict[str, str], settings: Settings
) -> None:
    tenant = await make_tenant(db, "Refusals")
    endpoint = await register(client, api, PUBLIC, workspace=tenant.key)
    path = f"{ENDPOINTS}/{endpoint['id']}"
    problem(await client.post(f"{path}/replay", json={}, headers=api), 422)
    problem(await client.post(f"{path}/replay", json={"since": "2026-01-01T00:00:00"}, headers=api), 422)
    problem(
        await client.post(
            f"{path}/replay",
            json={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            headers=api,
        ),
        422,
    )
    problem(await client.post(f"{path}/replay", json={"event_id": "evt_missing"}, headers=api), 404)
    other = await make_tenant(db, "Elsewhere")
    foreign = await emit(db, other.id, 1)
    problem(await client.post(f"{path}/replay", json={"event_id": foreign}, headers=api), 404)

    async with db.writing() as session:
        await rules.lock_fanout(session)
        await delivery.disable_endpoint(session, settings, endpoint["id"], "by a test", now=utcnow())
    got = (await client.get(path, headers=api)).json()
    assert got["disabled"] is True and got["disabled_reason"] == "by a test" and got["disabled_at"]
    mine = await emit(db, tenant.id, 2)
    body = problem(await client.post(f"{path}/replay", json={"event_id": mine}, headers=api), 409)
    assert "enable" in str(body["detail"])
    problem(await client.post(f"{path}/test", headers=api), 409)
    r = await client.post(f"{path}/enable", headers=api)
    assert r.status_code == 200 and r.json()["disabled"] is False and r.json()["disabled_reason"] is None
    r = await client.post(f"{path}/replay", json={"event_id": mine}, headers=api)
    assert r.status_code == 202 and r.json() == {"enqueued": 1, "next_since": None}
    async with db.reading() as session:
        queued = (await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "webhook"))).all()
    assert [(q.ordering_key, q.workspace_id) for q in queued] == [
        (f"{endpoint['id']}|{tenant.id}", tenant.id)
    ]
