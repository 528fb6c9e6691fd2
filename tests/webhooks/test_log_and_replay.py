"""The attempt log in pages (newest first, filtered by event and status, no repeats or gaps among equal
times) and replays (one event, a range, at most a bounded number, after what is queued)."""

from __future__ import annotations

import httpx
from sqlalchemy import insert

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import WebhookAttempt, utcnow
from provisio.domain import webhooks as rules
from provisio.notify import webhooks as delivery
from tests.conftest import make_tenant
from tests.notify.conftest import eventually, running
from tests.webhooks.conftest import ENDPOINTS, attempts_of, emit, endpoint_row, register, worker
from tests.webhooks.receiver import Receiver


async def test_the_deliveries_in_pages_newest_first_with_filters(
    db: Database, private_client: httpx.AsyncClient, api: dict[str, str], receiver: Receiver
) -> None:
    tenant = await make_tenant(db, "Pages")
    endpoint = await register(private_client, api, f"{receiver.url}/log")
    other = await register(private_client, api, f"{receiver.url}/other")
    at = utcnow()
    rows = [
        {
            "endpoint_id": endpoint["id"],
            "event_id": f"evt_{n % 5}",
            "event_type": "member.created",
            "workspace_id": tenant.id,
            "attempt": 1 + n // 5,
            "started_at": at,  # all at one time: the pages go by id
            "duration_ms": n,
            "outcome": "delivered" if n % 3 == 0 else "failed",
            "http_status": 200 if n % 3 == 0 else 500,
            "response_body": f"body {n}",
        }
        for n in range(37)
    ]
    async with db.writing() as session:
        await session.execute(insert(WebhookAttempt), rows)
        await session.execute(insert(WebhookAttempt), [{**rows[0], "endpoint_id": other["id"]}])

    async def pages(**params: str) -> list[int]:
        seen: list[int] = []
        after = ""
        while True:
            r = await private_client.get(
                f"{ENDPOINTS}/{endpoint['id']}/deliveries",
                params={"limit": "8", "after": after, **params},
                headers=api,
            )
            assert r.status_code == 200, r.text
            page = r.json()
            seen += [a["duration_ms"] for a in page["items"]]
            assert len(page["items"]) <= 8
            if page["next_cursor"] is None:
                return seen
            after = page["next_cursor"]

    assert await pages() == list(range(36, -1, -1))
    assert await pages(status="delivered") == [n for n in range(36, -1, -1) if n % 3 == 0]
    assert await pages(status="failed", event_id="evt_2") == [
        n for n in range(36, -1, -1) if n % 5 == 2 and n % 3
    ]
    first = (
        await private_client.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries", params={"limit": 1}, headers=api)
    ).json()["items"][0]
    assert first["status"] == "delivered" and first["response_body"] == "body 36" and first["attempt"] == 8
    assert set(first) == {
        "id",
        "event_id",
        "event_type",
        "attempt",
        "started_at",
        "duration_ms",
        "status",
        "http_status",
        "error",
        "response_body",
        "next_retry_at",
    }


async def test_replay_one_event_or_a_range_after_what_is_queued(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    tenant = await make_tenant(db, "Replay")
    since = utcnow().isoformat()  # after the tenant's own events (its seats, SCIM on): only these below
    endpoint = await register(private_client, api, f"{receiver.url}/replay", workspace=tenant.key)
    path = f"{ENDPOINTS}/{endpoint['id']}"
    async with running(worker(db, wh_settings)):
        events = [await emit(db, tenant.id, n) for n in range(4)]
        await eventually(lambda: len(receiver.answered()) == 4)
        r = await private_client.post(f"{path}/replay", json={"event_id": events[1]}, headers=api)
        assert r.status_code == 202 and r.json() == {"enqueued": 1, "next_since": None}
        await eventually(lambda: len(receiver.answered()) == 5)
        r = await private_client.post(f"{path}/replay", json={"since": since}, headers=api)
        assert r.json() == {"enqueued": 4, "next_since": None}
        await eventually(lambda: len(receiver.answered()) == 9)
    # A replayed event keeps its id: the receiver deduplicates by webhook-id.
    assert [x.headers["webhook-id"] for x in receiver.answered()] == [*events, events[1], *events]


async def test_a_replay_is_bounded_and_says_where_to_go_on(
    db: Database, private_client: httpx.AsyncClient, api: dict[str, str]
) -> None:
    tenant = await make_tenant(db, "Bounded")
    since = utcnow()  # after the tenant's own events (its seats, SCIM on): only these below
    endpoint = await register(private_client, api, "http://127.0.0.1:9/bounded", workspace=tenant.key)
    events = [await emit(db, tenant.id, n) for n in range(5)]
    row = await endpoint_row(db, endpoint["id"])
    async with db.reading() as session:
        selection = await rules.replay_selection(session, row, since=since, limit=3)
    assert [e.id for e in selection.events] == events[:3]
    async with db.reading() as session:
        fourth = await rules.replay_selection(session, row, event_id=events[3])
    assert selection.next_since == fourth.events[0].occurred_at
    async with db.writing() as session:
        done = await delivery.replay(session, row, since=since, until=fourth.events[0].occurred_at)
    assert (done.enqueued, done.next_since) == (3, None)


async def test_an_answer_that_is_not_text_is_kept_in_part_and_safely(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    tenant = await make_tenant(db, "Binary")
    endpoint = await register(private_client, api, f"{receiver.url}/bin")
    receiver.body = b"\x00\xff\xfe" + b"A" * 5000  # NUL, not UTF-8, and longer than a KiB
    async with running(worker(db, wh_settings)):
        await emit(db, tenant.id, 1)
        await eventually(lambda: len(receiver.answered()) == 1)
        await eventually(lambda: _logged(db, endpoint["id"]))
    [attempt] = await attempts_of(db, endpoint["id"])
    assert attempt.outcome == "delivered" and attempt.response_body is not None
    assert "\x00" not in attempt.response_body and attempt.response_body.endswith("A" * 1000)
    assert len(attempt.response_body.encode("utf-8", "replace")) <= 1024 + 3 * 3


async def _logged(db: Database, endpoint_id: str) -> bool:
    return bool(await attempts_of(db, endpoint_id))
