"""Delivery to a real receiver on 127.0.0.1: down, then failing, then answering; every event arrives once
it answers, in order per endpoint and workspace, signed as Standard Webhooks says (checked with the
reference library and by hand); workspaces isolated; rotation; the test ping."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import defaultdict
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook, WebhookVerificationError

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import HostEvent, WebhookEndpoint, utcnow
from provisio.domain import host_events
from provisio.metrics import WEBHOOK_ATTEMPTS
from tests.conftest import Tenant, make_tenant
from tests.notify.conftest import eventually, running
from tests.webhooks.conftest import ENDPOINTS, OPERATOR, attempts_of, emit, register, worker
from tests.webhooks.receiver import Received, Receiver

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _verify(secret: str, request: Received) -> dict[str, Any]:
    data: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return data


def _by_hand(secret: str, request: Received) -> None:
    """The signature as the Standard Webhooks spec defines it, without the library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = (
        f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    )
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert expected in request.headers["webhook-signature"].split(" ")


def _counter(outcome: str) -> float:
    return WEBHOOK_ATTEMPTS.labels(outcome)._value.get()


async def _scim_events(client: httpx.AsyncClient, db: Database, tenant: Tenant) -> list[str]:
    """Create a user through SCIM: the ids of the host events that wrote (none where SCIM emits none)."""
    async with db.reading() as session:
        before = {e.id for e in await host_events.read_after(session, limit=10_000, workspace_id=tenant.id)}
    r = await client.post(
        f"{tenant.base}/Users",
        json={
            "schemas": [USER],
            "userName": f"ada@{tenant.key}.test",
            "emails": [{"value": f"ada@{tenant.key}.test"}],
        },
        headers={**tenant.headers, "Content-Type": "application/scim+json"},
    )
    assert r.status_code == 201, r.text
    async with db.reading() as session:
        after = await host_events.read_after(session, limit=10_000, workspace_id=tenant.id)
    return [e.id for e in after if e.id not in before]


async def test_down_then_failing_then_answering_every_event_arrives_in_order_signed(
    db: Database,
    client: httpx.AsyncClient,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
) -> None:
    a, b = await make_tenant(db, "Alpha"), await make_tenant(db, "Beta")
    receiver = Receiver(answer=lambda _: 500)  # not started: its port refuses connections
    everything = await register(private_client, api, f"{receiver.url}/all")
    only_a = await register(private_client, api, f"{receiver.url}/a", workspace=a.key)
    assert everything["secret"].startswith("whsec_") and everything["workspace"] is None
    assert len(base64.b64decode(everything["secret"].removeprefix("whsec_"))) == 24
    assert only_a["workspace"] == a.key and only_a["secret"] != everything["secret"]

    emitted: dict[str, list[str]] = {a.id: [], b.id: []}
    for n in range(6):
        for tenant in (a, b):
            emitted[tenant.id].append(await emit(db, tenant.id, n))
    emitted[a.id] += await _scim_events(client, db, a)  # member.created, once SCIM writes host events
    refused_before = _counter("connection_refused")

    hooks = worker(db, wh_settings)
    try:
        async with running(hooks):
            await eventually(lambda: _counter("connection_refused") >= refused_before + 3)
            await receiver.start()  # now it answers, 500 to everything
            await eventually(lambda: len(receiver.requests) >= 6)
            receiver.answer = lambda _: 200
            await eventually(
                lambda: (
                    len(receiver.answered("/all")) >= sum(map(len, emitted.values()))
                    and len(receiver.answered("/a")) >= len(emitted[a.id])
                )
            )
    finally:
        await receiver.stop()

    secrets = {"/all": everything["secret"], "/a": only_a["secret"]}
    sequences: dict[tuple[str, str], list[str]] = defaultdict(list)
    for request in receiver.requests:
        event = _verify(secrets[request.path], request)  # every request, failed ones too
        assert request.headers["webhook-id"] == event["id"]
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("provisio-webhooks/")
        assert request.method == "POST"
        sequences[(request.path, event["workspace_id"])].append(event["id"])
    last = receiver.requests[-1]
    _by_hand(secrets[last.path], last)

    # Delivered once each, in the order the events occurred, per endpoint and workspace …
    for path, workspaces in (("/all", (a.id, b.id)), ("/a", (a.id,))):
        for ws in workspaces:
            answered = [r.event["id"] for r in receiver.answered(path) if r.event["workspace_id"] == ws]
            assert answered == emitted[ws]
            # … and no event was ever sent before the one ahead of it had been answered 2xx.
            seen = sequences[(path, ws)]
            assert [emitted[ws].index(i) for i in seen] == sorted(emitted[ws].index(i) for i in seen)
    assert not any(r.event["workspace_id"] == b.id for r in receiver.requests if r.path == "/a")

    log = await attempts_of(db, everything["id"])
    assert {x.error for x in log if x.outcome == "failed"} >= {"connection_refused", None}
    assert {x.http_status for x in log} >= {500, 200}
    delivered = [x for x in log if x.outcome == "delivered"]
    assert len(delivered) == sum(map(len, emitted.values()))
    assert all(x.response_body == '{"ok": true}' and x.duration_ms >= 0 for x in delivered)
    assert any(x.attempt > 1 for x in delivered)
    failed = [x for x in log if x.outcome == "failed"]
    assert all(x.next_retry_at is not None for x in failed)


async def test_a_rotation_signs_with_both_secrets_until_its_grace_ends(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    tenant = await make_tenant(db, "Rota")
    endpoint = await register(private_client, api, f"{receiver.url}/r")
    old = endpoint["secret"]
    r = await private_client.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret", json={}, headers=api)
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and new.startswith("whsec_") and r.json()["previous_secret_expires_at"]
    got = (await private_client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=api)).json()
    assert "secret" not in got and got["previous_secret_expires_at"] == r.json()["previous_secret_expires_at"]

    hooks = worker(db, wh_settings)
    async with running(hooks):
        await emit(db, tenant.id, 1)
        await eventually(lambda: len(receiver.answered()) == 1)
        during = receiver.answered()[0]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        _verify(new, during)
        _verify(old, during)
        _by_hand(old, during)

        # The grace is over (as if its day had passed): only the new secret signs.
        async with db.writing() as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint["id"])
                .values(previous_secret_until=utcnow() - timedelta(seconds=1))
            )
        await emit(db, tenant.id, 2)
        await eventually(lambda: len(receiver.answered()) == 2)
    after = receiver.answered()[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    _verify(new, after)
    with pytest.raises(WebhookVerificationError):
        _verify(old, after)

    # Without a grace the old secret stops at once.
    r = await private_client.post(
        f"{ENDPOINTS}/{endpoint['id']}/rotate-secret", json={"grace_seconds": 0}, headers=api
    )
    assert r.status_code == 200 and r.json()["previous_secret_expires_at"] is None


async def test_an_endpoint_of_a_workspace_never_gets_another_workspaces_events(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    a, b = await make_tenant(db, "Mine"), await make_tenant(db, "Theirs")
    endpoint = await register(
        private_client, api, f"{receiver.url}/mine", workspace=a.key, event_types=[host_events.MEMBER_CREATED]
    )
    assert endpoint["event_types"] == [host_events.MEMBER_CREATED]
    hooks = worker(db, wh_settings)
    async with running(hooks):
        theirs = [await emit(db, b.id, n, host_events.MEMBER_CREATED) for n in range(3)]
        other_type = await emit(db, a.id, 0, host_events.SEATS_PURCHASED)
        mine = await emit(db, a.id, 1, host_events.MEMBER_CREATED)
        await eventually(lambda: len(receiver.answered()) >= 1)
        # Whatever the fan-out has still to read is read: its position is past the last event.
        await eventually(lambda: _fanned_out_past(db, mine))
    assert [r.event["id"] for r in receiver.requests] == [mine]
    assert not {other_type, *theirs} & {r.headers["webhook-id"] for r in receiver.requests}
    assert [x.event_id for x in await attempts_of(db, endpoint["id"])] == [mine]


async def _fanned_out_past(db: Database, event_id: str) -> bool:
    from provisio.db.models import WebhookFanout

    async with db.reading() as session:
        cursor = await session.get(WebhookFanout, 1)
        event = await session.scalar(select(HostEvent).where(HostEvent.id == event_id))
    assert cursor is not None and event is not None
    return (cursor.txid, cursor.seq) >= (event.txid, event.seq)


async def test_an_endpoint_gets_only_events_that_occurred_after_it_was_made(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    tenant = await make_tenant(db, "Late")
    before = await emit(db, tenant.id, 0)
    endpoint = await register(private_client, api, f"{receiver.url}/late")
    after = await emit(db, tenant.id, 1)
    async with running(worker(db, wh_settings)):
        await eventually(lambda: len(receiver.answered()) >= 1)
        await eventually(lambda: _fanned_out_past(db, after))
    assert [r.event["id"] for r in receiver.requests] == [after]
    assert before not in [x.event_id for x in await attempts_of(db, endpoint["id"])]


async def test_the_test_ping_is_signed_and_logged_but_is_no_host_event(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    tenant = await make_tenant(db, "Ping")
    endpoint = await register(private_client, api, f"{receiver.url}/ping", workspace=tenant.key)
    r = await private_client.post(f"{ENDPOINTS}/{endpoint['id']}/test", headers=api)
    assert r.status_code == 202, r.text
    ping_id = r.json()["event_id"]
    receiver.answer = lambda _: 503
    async with running(worker(db, wh_settings)):
        await eventually(lambda: len(receiver.requests) == 1)
        await eventually(lambda: _has_attempts(db, endpoint["id"], 1))
    [request] = receiver.requests
    event = _verify(endpoint["secret"], request)
    assert event["type"] == "webhook.test" and event["id"] == ping_id and event["workspace"] == tenant.key
    [attempt] = await attempts_of(db, endpoint["id"])
    # One attempt only, and a failing ping disables nothing.
    assert (attempt.event_type, attempt.http_status, attempt.next_retry_at) == ("webhook.test", 503, None)
    assert (await private_client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=api)).json()[
        "disabled"
    ] is False
    async with db.reading() as session:
        assert await host_events.get_event(session, ping_id) is None


async def _has_attempts(db: Database, endpoint_id: str, n: int) -> bool:
    return len(await attempts_of(db, endpoint_id)) >= n


async def test_a_commit_that_emits_wakes_the_worker(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    """A transaction that emits calls the listeners once it has committed (never when it rolls back);
    the worker listens while it knows of an enabled endpoint, so a change of its own process is
    delivered at once rather than at the next poll."""
    tenant = await make_tenant(db, "Wake")
    calls: list[str] = []

    def listener() -> None:
        calls.append("woken")

    host_events.add_listener(listener)
    try:
        async with db.writing() as session:
            await host_events.emit(
                session, type=host_events.SEATS_PURCHASED, workspace_id=tenant.id, actor=OPERATOR, data={}
            )
            assert calls == []
        assert calls == ["woken"]
        with pytest.raises(RuntimeError):
            async with db.writing() as session:
                await host_events.emit(
                    session, type=host_events.SEATS_PURCHASED, workspace_id=tenant.id, actor=OPERATOR, data={}
                )
                raise RuntimeError("rolled back")
        assert calls == ["woken"]
    finally:
        host_events.remove_listener(listener)

    await register(private_client, api, f"{receiver.url}/wake")
    hooks = worker(db, wh_settings)
    first = await emit(db, tenant.id, 1)
    async with running(hooks):
        await eventually(lambda: len(receiver.answered()) == 1)
        assert hooks.wake in host_events._listeners
    assert hooks.wake not in host_events._listeners
    assert [r.event["id"] for r in receiver.answered()] == [first]


async def test_a_long_run_of_one_key_is_handed_back_and_goes_on_at_once(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    """A worker delivers a key's rows one after another without claiming each, but gives the key back
    after a while (so other keys get their turn) and takes it up again at once, not at the next poll."""
    tenant = await make_tenant(db, "Long")
    await register(private_client, api, f"{receiver.url}/long")
    async with db.writing() as session:
        emitted = [
            await host_events.emit(
                session,
                type=host_events.SEATS_PURCHASED,
                workspace_id=tenant.id,
                actor=OPERATOR,
                data={"n": n},
            )
            for n in range(250)
        ]
    # Readable by the fan-out before the worker starts (on PostgreSQL a transaction running anywhere on
    # the server holds new events back), so that its first pass finds them and no poll is needed.
    await eventually(lambda: _readable(db, emitted[-1], tenant.id))
    polls_a_minute = wh_settings.model_copy(update={"outbox_poll_seconds": 60.0})
    async with running(worker(db, polls_a_minute)):
        await eventually(lambda: len(receiver.answered()) == 250, within=60)
    assert [r.event["id"] for r in receiver.answered()] == emitted


async def _readable(db: Database, event_id: str, workspace_id: str) -> bool:
    async with db.reading() as session:
        events = await host_events.read_after(session, limit=100_000, workspace_id=workspace_id)
    return event_id in {e.id for e in events}
