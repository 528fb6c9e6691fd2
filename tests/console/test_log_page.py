"""Workspace > Provisioning log: newest first, filters, keyset pages without duplicates or gaps (equal
times too), the event view, the streamed CSV with formulas neutralised, and tenant isolation."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert

from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent
from provisio.domain import provisioning_log
from provisio.domain.provisioning_log import LogFilter
from tests.console.pages import new_browser, signed_in_tenant
from tests.oauth.helpers import OAuthTenant

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> OAuthTenant:
    return await signed_in_tenant(db, browser)


def _path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/log"


async def _add(db: Database, workspace_id: str, rows: list[dict[str, object]]) -> None:
    base = {
        "workspace_id": workspace_id,
        "at": AT,
        "actor": "OAuth client okta",
        "credential": "client_credentials:okta",
        "action": "create",
        "outcome": "success",
        "status": 201,
        "repeats": 1,
    }
    async with db.writing() as session:
        await session.execute(insert(ProvisioningEvent), [base | row for row in rows])


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'aria-label="Details of event (\d+)"', html)]


async def test_page_is_linked_lists_newest_first_and_shows_an_event(
    browser: httpx.AsyncClient, db: Database, tenant: OAuthTenant
) -> None:
    await _add(
        db,
        tenant.id,
        [
            {"user_name": "ada@acme.example", "request_id": "req-1"},
            {
                "user_name": "bob@acme.example",
                "outcome": "failure",
                "status": 409,
                "scim_type": "uniqueness",
                "detail": "userName is taken",
                "request_id": "req-2",
                "duration_ms": 12,
                "request_body": '{"userName":"bob@acme.example"}',
            },
        ],
    )
    r = await browser.get(_path(tenant))
    assert r.status_code == 200, r.text
    assert f'href="{_path(tenant)}" aria-current="page">Provisioning log' in r.text
    ids = _ids(r.text)
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)
    assert r.text.index("bob@acme.example") < r.text.index("ada@acme.example")
    detail = await browser.get(f"{_path(tenant)}/{ids[0]}")
    assert detail.status_code == 200
    for shown in ("409", "uniqueness", "userName is taken", "req-2", "12 ms", "{&#34;userName&#34;:&#34;bob"):
        assert shown in detail.text, shown
    assert (await browser.get(f"{_path(tenant)}/999999999")).status_code == 404
    assert (await browser.get(f"{_path(tenant)}/not-a-number")).status_code == 404


async def test_filters(browser: httpx.AsyncClient, db: Database, tenant: OAuthTenant) -> None:
    member = str(uuid.uuid4())
    await _add(
        db,
        tenant.id,
        [
            {"user_name": "ada@acme.example", "member_id": member},
            {"user_name": "adam@acme.example", "action": "update", "status": 200},
            {
                "user_name": "bob@acme.example",
                "outcome": "failure",
                "status": 400,
                "at": AT + timedelta(hours=2),
            },
            {"actor": "bearer token old", "credential": "bearer:t1", "outcome": "failure", "status": 401},
        ],
    )

    async def names(**query: str) -> list[str]:
        r = await browser.get(_path(tenant), params=query)
        assert r.status_code == 200, r.text
        return re.findall(r'<td class="user-name">([^<]*)</td>', r.text)

    assert await names(outcome="failure") == ["bob@acme.example"]  # the 401 row has no member
    assert await names(outcome="success", operation="update") == ["adam@acme.example"]
    assert await names(member="ada") == ["adam@acme.example", "ada@acme.example"]
    assert await names(member="ada@acme.example") == ["ada@acme.example"]
    assert await names(member=member) == ["ada@acme.example"]
    assert await names(member="Ada") == []  # userNames are matched as sent, case and all
    assert await names(**{"from": "2026-12-01T10:00"}) == ["bob@acme.example"]
    assert await names(to="2026-12-01T10:00", outcome="failure") == []
    r = await browser.get(_path(tenant), params={"credential": "bearer:t1"})
    assert len(_ids(r.text)) == 1 and "bearer token old" in r.text
    bad = await browser.get(_path(tenant), params={"from": "yesterday"})
    assert bad.status_code == 400 and "From must be a date and time" in bad.text
    bad = await browser.get(_path(tenant), params={"outcome": "maybe"})
    assert bad.status_code == 400 and "Outcome must be one of" in bad.text


async def test_keyset_pages_have_no_duplicates_or_gaps(
    browser: httpx.AsyncClient, db: Database, tenant: OAuthTenant
) -> None:
    # 120 events at the very same time: ids, not times, order the pages.
    await _add(db, tenant.id, [{"user_name": f"u{i:03}@acme.example"} for i in range(120)])
    seen: list[int] = []
    url: str | None = _path(tenant)
    while url:
        r = await browser.get(url)
        assert r.status_code == 200
        seen += _ids(r.text)
        found = re.search(r'href="([^"]+)" rel="next"', r.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == 120 and len(set(seen)) == 120 and seen == sorted(seen, reverse=True)

    async with db.reading() as session:
        first = await provisioning_log.page(session, tenant.id, LogFilter(), limit=7)
        second = await provisioning_log.page(
            session, tenant.id, LogFilter(), before=first.next_before, limit=7
        )
    assert first.next_before == first.events[-1].id
    assert [e.id for e in second.events] == [i for i in seen if i < first.events[-1].id][:7]


async def test_another_workspaces_log_and_events_are_not_found(
    browser: httpx.AsyncClient, db: Database, tenant: OAuthTenant, app: object
) -> None:
    async with new_browser(app) as other_browser:
        other = await signed_in_tenant(db, other_browser)
    await _add(db, other.id, [{"user_name": "secret@globex.example"}])
    async with db.reading() as session:
        theirs = (await provisioning_log.page(session, other.id, LogFilter())).events[0].id
    for path in (_path(other), f"{_path(other)}/{theirs}", f"{_path(other)}.csv"):
        r = await browser.get(path)
        assert r.status_code == 404, path
        assert "secret@globex.example" not in r.text
    # Through one's own workspace, another's event id is not found either.
    r = await browser.get(f"{_path(tenant)}/{theirs}")
    assert r.status_code == 404 and "secret@globex.example" not in r.text


async def test_csv_is_streamed_filtered_and_safe_in_a_spreadsheet(
    browser: httpx.AsyncClient, db: Database, tenant: OAuthTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provisioning_log, "EXPORT_BATCH", 3)
    rows: list[dict[str, object]] = [{"user_name": f"u{i}@acme.example"} for i in range(7)]
    rows += [
        {
            "user_name": '=HYPERLINK("http://evil")',
            "outcome": "failure",
            "status": 400,
            "detail": "+cmd|' /C calc'!A0",
        },
        {"user_name": "@SUM(1)", "outcome": "failure", "status": 400, "detail": "-2+3"},
    ]
    await _add(db, tenant.id, rows)
    batches: list[int] = []
    original = provisioning_log.page

    async def counted(*args: object, **kwargs: object) -> provisioning_log.LogPage:
        found = await original(*args, **kwargs)  # type: ignore[arg-type]
        batches.append(len(found.events))
        return found

    monkeypatch.setattr(provisioning_log, "page", counted)
    async with browser.stream("GET", f"{_path(tenant)}.csv") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        text = "".join([chunk async for chunk in r.aiter_text()])
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 9 and batches == [3, 3, 3]  # read in keyset batches, not all at once
    assert [int(row["id"]) for row in table] == sorted((int(row["id"]) for row in table), reverse=True)
    cells = [value for row in table for value in row.values()]
    assert not [c for c in cells if c and c[0] in "=+-@"]
    assert '\'=HYPERLINK("http://evil")' in cells and "'@SUM(1)" in cells and "'-2+3" in cells

    r = await browser.get(f"{_path(tenant)}.csv", params={"outcome": "failure"})
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == 2
