"""Hostile input to the admin console: every form of every workspace page, posted by a signed-in admin
with a valid CSRF token and fields that are missing, repeated, of the wrong kind or hostile text, and
the pages' query parameters. Never a 5xx; a refusal is a console page (HTML), and changes nothing.

The forms are read from the pages themselves, so a form added later is fuzzed without a change here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import (
    Member,
    NotificationRecipient,
    OAuthClient,
    OAuthRedirectUri,
    ScimToken,
    SeatLedgerEntry,
    Workspace,
    WorkspaceAdmin,
    WorkspaceDomain,
)
from tests.console.pages import billing_path, domains_path, members_path, new_browser, signed_in_tenant
from tests.hostile import strategies as hs
from tests.hostile.test_scim_hostile import hostile
from tests.oauth.helpers import OAuthTenant

FORM_RE = re.compile(
    r"<form\b[^>]*\bmethod=\"post\"[^>]*\baction=\"([^\"]+)\"[^>]*>(.*?)</form>", re.S | re.I
)
NAME_RE = re.compile(r"\bname=\"([^\"]+)\"(?:[^>]*\bvalue=\"([^\"]*)\")?")
# Signing out ends the session the other examples need; it is a form without fields anyway.
SKIPPED_ACTIONS = {"/console/logout"}
FORM = "application/x-www-form-urlencoded"


@dataclass
class Console:
    browser: httpx.AsyncClient
    db: Database
    tenant: OAuthTenant
    pages: list[str]


@pytest.fixture
async def console(app: Any, db: Database) -> Console:
    browser = new_browser(app)
    tenant = await signed_in_tenant(db, browser, seats=10)
    settings_path = f"/console/workspaces/{tenant.key}/settings/advanced"
    admins_path = f"/console/workspaces/{tenant.key}/admins"
    notifications_path = f"/console/workspaces/{tenant.key}/notifications"
    pages = [
        members_path(tenant),
        billing_path(tenant),
        domains_path(tenant),
        settings_path,
        admins_path,
        notifications_path,
    ]
    for path in pages:
        r = await browser.get(path)
        assert r.status_code == 200, (path, r.status_code)
    return Console(browser, db, tenant, pages)


def forms(html: str) -> list[tuple[str, dict[str, str]]]:
    """Each POST form of a page: its action and its fields with their values."""
    found = []
    for action, inner in FORM_RE.findall(html):
        fields = {name: value for name, value in NAME_RE.findall(inner)}
        if action not in SKIPPED_ACTIONS:
            found.append((action, fields))
    return found


async def snapshot(console: Console) -> tuple[Any, ...]:
    ws_id = console.tenant.id
    tables: list[Any] = [
        Member,
        ScimToken,
        SeatLedgerEntry,
        WorkspaceDomain,
        OAuthClient,
        OAuthRedirectUri,
        WorkspaceAdmin,
        NotificationRecipient,
    ]
    async with console.db.reading() as session:
        facts: list[Any] = [
            _row((await session.execute(select(Workspace).where(Workspace.id == ws_id))).scalar_one())
        ]
        for table in tables:
            rows = (await session.execute(select(table).where(table.workspace_id == ws_id))).scalars()
            facts.append(sorted(_row(r) for r in rows))
    return tuple(facts)


def _row(obj: Any) -> str:
    return repr(sorted((c.key, repr(getattr(obj, c.key))) for c in obj.__table__.columns))


def assert_console_answer(r: httpx.Response, what: Any) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:2000])
    if r.status_code >= 400:
        assert r.headers.get("content-type", "").startswith("text/html"), (what, r.status_code, r.text[:500])


form_values = hs.tricky_text | hs.numbers.map(str) | st.sampled_from(["", "on", "allow", "deny", "0", "-1"])


@hostile
@given(data=st.data())
async def test_hostile_console_forms(console: Console, data: st.DataObject) -> None:
    page = data.draw(st.sampled_from(console.pages))
    opened = await console.browser.get(page)
    assert opened.status_code == 200, (page, opened.status_code)
    # An index, not sampled_from: the forms on a page change as examples add domains or members, and
    # hypothesis needs the same draws to mean the same thing when it replays or shrinks an example.
    found = forms(opened.text)
    action, fields = found[data.draw(st.integers(0, 63)) % len(found)]
    sent: list[tuple[str, str]] = []
    hostile_values = data.draw(st.lists(form_values, min_size=4, max_size=4))
    choices = data.draw(
        st.lists(st.sampled_from(["keep", "drop", "hostile", "twice"]), min_size=8, max_size=8)
    )
    for i, (name, value) in enumerate(fields.items()):
        if name == "csrf_token":
            sent.append((name, value))
            continue
        choice = choices[i % len(choices)]
        if choice == "keep":
            sent.append((name, value))
        elif choice == "hostile":
            sent.append((name, hostile_values[i % len(hostile_values)]))
        elif choice == "twice":
            sent += [(name, value), (name, hostile_values[i % len(hostile_values)])]
    sent += data.draw(st.lists(st.tuples(hs.tricky_text, form_values), max_size=2))
    before = await snapshot(console)
    form = urlencode(sent).encode()
    r = await console.browser.post(action, content=form, headers={"Content-Type": FORM})
    assert_console_answer(r, (action, sent))
    if r.status_code >= 400:
        assert await snapshot(console) == before, (action, sent, r.status_code)


@hostile
@given(
    data=st.data(),
    params=st.dictionaries(hs.tricky_text | st.sampled_from(["q", "status", "page", "before"]), form_values),
)
async def test_hostile_console_queries(console: Console, data: st.DataObject, params: dict[str, str]) -> None:
    # The pages with forms, and those that only read (the Webhooks page).
    readers = [f"/console/workspaces/{console.tenant.key}/webhooks"]
    page = data.draw(
        st.sampled_from([*console.pages, *readers, f"/console/workspaces/{data.draw(hs.segments)}/members"])
    )
    r = await console.browser.get(page, params=params)
    assert_console_answer(r, (page, params))


@hostile
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "text/plain",
            "",
        ]
    ),
)
async def test_hostile_console_bodies(console: Console, body: bytes, content_type: str) -> None:
    """Bodies that are not forms at all, posted to every form's action."""
    opened = await console.browser.get(console.pages[0])
    for action, _ in forms(opened.text):
        before = await snapshot(console)
        r = await console.browser.post(action, content=body, headers={"Content-Type": content_type})
        assert_console_answer(r, (action, body, content_type))
        if r.status_code >= 400:
            assert await snapshot(console) == before, (action, body)
