"""Index pagination (RFC 7644 §3.4.2.4) for every page of a workspace. An unfiltered page past the middle
is read from the far end in the reverse order (``members._nearer_end``); every page, whichever way it was
read, must be exactly the slice of the whole ordered list that ``startIndex`` and ``count`` name."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update

from provisio.db.engine import Database
from provisio.db.models import Member, MemberBucket, Workspace
from provisio.domain import member_buckets, members
from provisio.domain.members import _nearer_end
from tests.conftest import Tenant
from tests.scim.test_okta_flow import CORE, okta_user

SIZE = 11


async def _seed(client: httpx.AsyncClient, tenant: Tenant) -> list[dict]:
    users = []
    for i in range(SIZE):
        body = okta_user(f"page{i:02d}@example.com", given=f"G{i % 3}", family=f"F{(i * 5) % SIZE:02d}")
        if i % 4 == 1:  # missing values (sorted as "") and ties, which the reverse order must mirror
            body = {k: v for k, v in body.items() if k not in ("displayName", "externalId", "name")}
        if i % 3 == 2:
            body["active"] = False  # inactive members are still listed
        r = await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)
        assert r.status_code == 201, r.text
        users.append(r.json())
    # A deleted member is not a row of any page, from either end.
    assert (
        await client.delete(f"{tenant.base}/Users/{users[4]['id']}", headers=tenant.headers)
    ).status_code == 204
    return [u for i, u in enumerate(users) if i != 4]


async def _ids(client: httpx.AsyncClient, tenant: Tenant, params: dict[str, object]) -> tuple[int, list[str]]:
    r = await client.get(f"{tenant.base}/Users", params=params, headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["startIndex"] == params.get("startIndex", 1)
    assert body["itemsPerPage"] == len(body["Resources"])
    return body["totalResults"], [u["id"] for u in body["Resources"]]


@contextmanager
def _statements(app: Any) -> Iterator[list[str]]:
    """The SQL the app's reading engine runs meanwhile."""
    seen: list[str] = []
    engine = app.state.db.read_engine.sync_engine

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


SORT_KEYS = [
    None,
    "userName",
    "displayName",
    "name.givenName",
    "externalId",
    "active",
    "meta.created",
    "title",
]


@pytest.mark.parametrize(
    ("sort_by", "buckets"),
    [(key, False) for key in SORT_KEYS] + [(None, True)],
    ids=[f"{key}-rows" for key in SORT_KEYS] + ["None-buckets"],
)
async def test_every_offset_page_is_its_slice_of_the_whole_list(
    client: httpx.AsyncClient,
    tenant: Tenant,
    app: Any,
    monkeypatch: pytest.MonkeyPatch,
    sort_by: str | None,
    buckets: bool,
) -> None:
    """With ``buckets``, pages in id order from the second on skip whole buckets
    (``domain.member_buckets``), as pages past ``BUCKET_SKIP_FROM`` do in a large workspace."""
    if buckets:
        monkeypatch.setattr(members, "BUCKET_SKIP_FROM", 1)
        # Ids in a few prefixes, so that buckets hold several members (and pages start inside them) and
        # one bucket is left with none live (``_seed`` deletes the fifth member).
        prefixes = iter(["a0", "a0", "a0", "0f", "5c", "a0", "ff", "0f", "0f", "a0", "ff"])
        monkeypatch.setattr(members, "new_id", lambda: f"{next(prefixes)}{uuid.uuid4()}"[:36])
    users = await _seed(client, tenant)
    if buckets:
        assert sorted({u["id"][:2] for u in users}) == ["0f", "a0", "ff"]
    with _statements(app) as seen:
        await _ids(client, tenant, {"startIndex": 3, "count": 2})
    assert any("member_buckets" in sql for sql in seen) == buckets
    live = len(users)
    for order in ("ascending", "descending"):
        sort = {"sortOrder": order} | ({"sortBy": sort_by} if sort_by else {})
        # The whole list as one first page: read forwards, never reversed.
        total, whole = await _ids(client, tenant, {**sort, "count": 100})
        assert total == live and sorted(whole) == sorted(u["id"] for u in users)
        if sort_by is None:
            assert whole == sorted(whole, reverse=order == "descending")
        if sort_by == "userName":
            names = {u["id"]: u["userName"].lower() for u in users}
            assert [names[i] for i in whole] == sorted(names.values(), reverse=order == "descending")
        for count in (1, 2, 3, 5, live - 1, live, live + 4):
            for start in range(1, live + 3):
                total, page = await _ids(client, tenant, {**sort, "startIndex": start, "count": count})
                assert total == live
                assert page == whole[start - 1 : start - 1 + count], (order, count, start)


async def test_filtered_pages_past_the_middle(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """A filter's total is not known before its page is read, so it skips forwards; the pages agree."""
    await _seed(client, tenant)
    params: dict[str, object] = {"filter": 'userName sw "page"', "sortBy": "name.familyName"}
    total, whole = await _ids(client, tenant, {**params, "count": 100})
    assert total == SIZE - 1
    for start in range(1, total + 2):
        assert (await _ids(client, tenant, {**params, "startIndex": start, "count": 3}))[1] == whole[
            start - 1 : start + 2
        ]


# E-mail types as a fuzzing client sends them: the filters below must neither miss nor double-count.
ODD_TYPES = ("work", "Work", "home", "other", "", "wörk", "w" * 300, None)


def varied_user(tag: str, i: int) -> dict[str, Any]:
    """User ``i`` of a varied population (the same for the same ``i``): no, one or many e-mails of odd
    types, long values that PostgreSQL stores out of line, missing attributes, some users inactive."""
    rng = random.Random(i)
    body: dict[str, Any] = {"schemas": [CORE], "userName": f"v{i:04d}-{tag}-{'ü' * rng.randrange(300)}"}
    emails = []
    for k in range(rng.choice((0, 1, 1, 2, 3, 8))):
        email: dict[str, Any] = {"value": f"{'x' * rng.randrange(200)}{i}.{k}@{tag}.example"}
        kind = rng.choice(ODD_TYPES)
        if kind is not None:
            email["type"] = kind
        emails.append(email)
    if emails:
        emails[rng.randrange(len(emails))]["primary"] = rng.random() < 0.7
        body["emails"] = emails
    if rng.random() < 0.3:
        body["active"] = False
    if rng.random() < 0.6:
        body["name"] = {"givenName": "g" * rng.randrange(100), "familyName": f"F{rng.randrange(5)}"}
    if rng.random() < 0.4:
        body["title"] = "t" * rng.randrange(4_000)
    return body


async def seed_varied(client: httpx.AsyncClient, tenant: Tenant, size: int, tag: str) -> list[str]:
    """``size`` varied users, every tenth of them deleted; the ids of the others."""
    ids = []
    for i in range(size):
        r = await client.post(f"{tenant.base}/Users", json=varied_user(tag, i), headers=tenant.headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for member_id in ids[::10]:
        r = await client.delete(f"{tenant.base}/Users/{member_id}", headers=tenant.headers)
        assert r.status_code == 204
    return [member_id for n, member_id in enumerate(ids) if n % 10]


FILTERS = [
    'emails.type eq "work"',
    'not (emails.type eq "work")',
    'emails[type eq "home" or value co "1"]',
    "active eq false",
    "title pr",
]


@pytest.mark.parametrize("sort_by", [None, "userName", "name.familyName", "title", "emails"])
async def test_filtered_offset_pages_are_their_slice_of_the_filtered_list(
    client: httpx.AsyncClient, tenant: Tenant, sort_by: str | None
) -> None:
    """Whatever the filter and the sort: every page equals its slice of the whole filtered list."""
    live = await seed_varied(client, tenant, 22, tenant.key)
    for text in FILTERS:
        for order in ("ascending", "descending"):
            params = {"filter": text, "sortOrder": order} | ({"sortBy": sort_by} if sort_by else {})
            total, whole = await _ids(client, tenant, {**params, "count": 100})
            assert total == len(whole) and set(whole) <= set(live), text
            assert 2 < total < len(live) - 2, text  # pages of a real selection
            for start in range(1, total + 3):
                page = await _ids(client, tenant, {**params, "startIndex": start, "count": 3})
                assert page == (total, whole[start - 1 : start + 2]), (text, order, start)


FORWARD = [Member.id.asc()]
BACKWARD = [Member.id.desc()]


@pytest.mark.parametrize(
    ("offset", "limit", "total", "expected"),
    [
        (0, 100, 10_000, None),  # a first page skips nothing
        (100, 100, 10_000, ("forward", 100, 100)),
        (5_000, 100, 10_000, ("forward", 5_000, 100)),  # the middle: no nearer end
        (5_001, 100, 10_000, ("backward", 4_899, 100)),
        (9_850, 100, 10_000, ("backward", 50, 100)),
        (9_950, 100, 10_000, ("backward", 0, 50)),  # the last page, not full
        (9_999, 100, 10_000, ("backward", 0, 1)),
        (10_000, 100, 10_000, ("forward", 10_000, 100)),  # past the end: an empty page, read forwards
        (9_850, 100, None, ("forward", 9_850, 100)),  # a filter: no total known in advance
        (2, 5, 3, ("backward", 0, 1)),
    ],
)
def test_pages_past_the_middle_are_counted_from_the_far_end(
    offset: int, limit: int, total: int | None, expected: tuple[str, int, int] | None
) -> None:
    """Which way a page is read, how many rows it skips and takes (the HTTP tests above get the same
    pages either way, so they alone could not tell whether the far end is ever used)."""
    skip = _nearer_end(offset, limit, total, FORWARD, BACKWARD)
    if expected is None:
        assert skip is None
        return
    ordering, skipped, taken = skip  # type: ignore[misc]
    assert ("forward" if ordering is FORWARD else "backward", skipped, taken) == expected


async def test_bucket_counts_follow_every_create_and_delete(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    """The kept counts (bucket by bucket, and the workspace's total) equal the live rows."""
    users = await _seed(client, tenant)  # creates, deactivations and a DELETE
    for user in users[:3]:
        r = await client.delete(f"{tenant.base}/Users/{user['id']}", headers=tenant.headers)
        assert r.status_code == 204
    prefix = func.substr(Member.id, 1, 2)
    async with db.reading() as session:
        rows = await session.execute(
            select(prefix, func.count())
            .where(Member.workspace_id == tenant.id, Member.deleted_at.is_(None))
            .group_by(prefix)
        )
        expected = {p: n for p, n in rows.all()}
        kept = await session.execute(
            select(MemberBucket.prefix, MemberBucket.live).where(MemberBucket.workspace_id == tenant.id)
        )
        assert {p: n for p, n in kept.all() if n} == expected
    assert sum(expected.values()) == len(users) - 3
    body = (await client.get(f"{tenant.base}/Users", params={"count": 1}, headers=tenant.headers)).json()
    assert body["totalResults"] == len(users) - 3


async def test_recount_repairs_counts_written_around_the_server(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``provisio db recount``: counts broken by hand (SQL around the server) are rebuilt from the rows."""
    monkeypatch.setattr(members, "BUCKET_SKIP_FROM", 1)
    users = await _seed(client, tenant)
    _, whole = await _ids(client, tenant, {"count": 100})
    async with db.writing() as session:
        await session.execute(
            update(MemberBucket)
            .where(MemberBucket.workspace_id == tenant.id)
            .values(live=MemberBucket.live + 1)
        )
        await session.execute(update(Workspace).where(Workspace.id == tenant.id).values(member_count=3))
    assert (await _ids(client, tenant, {"startIndex": 2, "count": 100}))[0] == 3  # the broken total shows
    async with db.writing() as session:
        assert tenant.id in await member_buckets.recount(session)
    async with db.writing() as session:
        assert await member_buckets.recount(session) == []  # nothing left to correct
    for start in range(1, len(users) + 2):
        total, page = await _ids(client, tenant, {"startIndex": start, "count": 3})
        assert (total, page) == (len(users), whole[start - 1 : start + 2])
