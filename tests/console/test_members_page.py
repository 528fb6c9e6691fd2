"""Workspace > Members through its forms (no JavaScript): search, status, seat use, IdP-managed members
read-only, members added by hand (under the SCIM rules), deactivation and reactivation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from provisio.db.engine import Database
from provisio.domain import console_members, scim_settings
from provisio.domain import tokens as token_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from tests.console.pages import (
    member_by_user_name,
    member_ids,
    members_path,
    new_browser,
    own_domain,
    scim_member,
    signed_in_tenant,
    submit,
    unique_email,
    used_and_purchased,
)
from tests.oauth.helpers import OAuthTenant, csrf_token, make_admin, sign_in


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> OAuthTenant:
    return await signed_in_tenant(db, browser)


async def test_empty_page_shows_seats_and_navigation(browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    r = await browser.get(members_path(tenant))
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    assert "<h1>Members</h1>" in r.text
    assert "<strong>0</strong> of <strong>100</strong> seats used" in r.text
    assert "No members yet" in r.text
    nav = re.search(r'<nav class="workspace-nav".*?</nav>', r.text, re.S)
    assert nav
    for label in ("SCIM settings", "Members", "Billing &amp; seats", "Domains"):
        assert label in nav.group(0)
    assert f'href="{members_path(tenant)}" aria-current="page">Members' in nav.group(0)
    assert '<label for="q">' in r.text and '<label for="new-email">' in r.text
    assert '<label for="new-name">' in r.text


async def test_add_member_by_hand(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    email = unique_email(await own_domain(db, tenant), "grace")
    r = await submit(browser, members_path(tenant), "add", email=email, name="Grace  Hopper")
    assert r.status_code == 303
    assert r.headers["location"].startswith(members_path(tenant) + "?notice=added")
    page = await browser.get(r.headers["location"])
    assert f"Added {email}. They use one seat." in page.text
    assert "Grace Hopper" in page.text and email.lower() in page.text and "Added here" in page.text
    assert "<strong>1</strong> of <strong>100</strong> seats used" in page.text
    member = await member_by_user_name(db, tenant, email)
    assert member.active and not member.provisioned_by_scim and member.display_name == "Grace Hopper"
    assert await used_and_purchased(db, tenant) == (1, 100)


@pytest.mark.parametrize(
    ("email", "name", "message"),
    [
        ("not-an-address", "Ada", "is not an e-mail address"),
        ("ada@localhost", "Ada", "is not an e-mail address"),
        ("ada lovelace@x.example", "Ada", "is not an e-mail address"),
        ("{own}", "   ", "Give the member&#39;s name"),
        ("ada@elsewhere.example", "Ada", "elsewhere.example"),
    ],
)
async def test_add_member_validation(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, email: str, name: str, message: str
) -> None:
    email = email.replace("{own}", unique_email(await own_domain(db, tenant)))
    r = await submit(browser, members_path(tenant), "add", email=email, name=name)
    assert r.status_code == 400
    assert message in r.text
    assert 'aria-invalid="true"' in r.text and 'id="page-error"' in r.text
    assert f'value="{email}"' in r.text  # what was typed stays in the form
    assert await used_and_purchased(db, tenant) == (0, 100)


async def test_add_member_follows_the_seat_and_workspace_rules(db: Database, app: object) -> None:
    async with new_browser(app) as browser:
        tenant = await signed_in_tenant(db, browser, seats=1)
        domain = await own_domain(db, tenant)
        first = unique_email(domain)
        assert (await submit(browser, members_path(tenant), "add", email=first, name="A")).status_code == 303
        # The same person twice: 409.
        r = await submit(browser, members_path(tenant), "add", email=first.upper(), name="A")
        assert r.status_code == 409 and "already a member" in r.text
        # No free seat and auto-charge off: 403 with the same detail SCIM gives.
        r = await submit(browser, members_path(tenant), "add", email=unique_email(domain), name="B")
        assert r.status_code == 403
        assert "No free seat" in r.text and "(1 of 1 used)" in r.text and "auto-charge is off" in r.text
        assert await used_and_purchased(db, tenant) == (1, 1)

    # Someone active in another workspace: 409, without naming it.
    async with new_browser(app) as other_browser:
        other = await signed_in_tenant(db, other_browser, allow_other_domains=True)
        r = await submit(other_browser, members_path(other), "add", email=first, name="A")
        assert r.status_code == 409 and "another workspace" in r.text
        assert tenant.name not in r.text


async def test_auto_charge_buys_a_seat_for_a_member_added_by_hand(db: Database, app: object) -> None:
    async with new_browser(app) as browser:
        tenant = await signed_in_tenant(db, browser, seats=0, auto_charge=True)
        email = unique_email(await own_domain(db, tenant))
        assert (await submit(browser, members_path(tenant), "add", email=email, name="A")).status_code == 303
        assert await used_and_purchased(db, tenant) == (1, 1)


async def test_search_status_and_pages(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    domain = await own_domain(db, tenant)
    grace = unique_email(domain, "grace")
    await scim_member(db, tenant, grace, given="Grace")
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        for i in range(27):
            await console_members.add_member(
                session,
                ws,
                email=f"user{i:02d}-{tenant.key}@{domain}",
                name=f"Person {i:02d}",
                actor="t",
                by=CLI_ACTOR,
            )
        linus = await console_members.add_member(
            session, ws, email=unique_email(domain, "linus"), name="Linus Torvalds", actor="t", by=CLI_ACTOR
        )
        await console_members.set_active(session, ws, linus.id, False, actor="t", by=CLI_ACTOR)

    path = members_path(tenant)
    page = await browser.get(path)
    assert "<strong>28</strong> of <strong>100</strong> seats used" in page.text
    assert "1\u201325 of 29" in page.text and "Page 1 of 2" in page.text and "Next page" in page.text
    assert len(member_ids(page.text)) == 24  # sorted by userName; Grace (SCIM) comes first, with no form
    second = await browser.get(path, params={"page": "2"})
    assert "26\u201329 of 29" in second.text and "Previous page" in second.text
    assert len(member_ids(second.text)) == 4

    # By given + family name (as one phrase), by e-mail part, by userName, ignoring case.
    for query in ("grace LOVELACE", grace.split("@")[0].upper(), "Person 07"):
        found = await browser.get(path, params={"q": query})
        rows = re.findall(r'<tr>\s*<th scope="row"', found.text)
        assert len(rows) == 1, (query, found.text)
    # Wildcards in the search are plain text.
    assert "No member matches" in (await browser.get(path, params={"q": "%"})).text
    # Status filter.
    deactivated = await browser.get(path, params={"status": "deactivated"})
    assert "Linus Torvalds" in deactivated.text and "Person 01" not in deactivated.text
    assert "Reactivate Linus Torvalds" in deactivated.text
    active = await browser.get(path, params={"status": "active", "q": "linus"})
    assert "No member matches" in active.text
    # Unknown status and page values fall back to everything, page 1.
    odd = await browser.get(path, params={"status": "nope", "page": "99"})
    assert odd.status_code == 200 and "1\u201325 of 29" in odd.text


async def test_idp_managed_members_are_read_only(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    email = unique_email(await own_domain(db, tenant))
    member_id = await scim_member(db, tenant, email)
    page = await browser.get(members_path(tenant))
    assert 'class="badge badge-idp" aria-describedby="idp-explanation">Identity provider' in page.text
    assert '<span class="hint" aria-describedby="idp-explanation">Read-only</span>' in page.text
    assert "It owns their userName, name" in page.text
    assert member_ids(page.text) == []  # no deactivate form for it
    r = await submit(browser, members_path(tenant), "deactivate", member_id=member_id)
    assert r.status_code == 403
    assert "managed by your identity provider" in r.text and "unassign them" in r.text
    assert (await member_by_user_name(db, tenant, email)).active


async def test_deactivate_and_reactivate(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    email = unique_email(await own_domain(db, tenant), "ken")
    await submit(browser, members_path(tenant), "add", email=email, name="Ken Thompson")
    member = await member_by_user_name(db, tenant, email)
    path = members_path(tenant)
    # The row's button opens a confirmation (a GET: nothing changes yet) that keeps the list's state.
    listing = await browser.get(path, params={"q": "ken"})
    assert f'<form method="get" action="{path}/deactivate">' in listing.text
    confirm = await browser.get(
        f"{path}/deactivate", params={"member_id": member.id, "q": "ken", "status": "", "page": "1"}
    )
    assert confirm.status_code == 200 and f"Deactivate {email}?" in confirm.text
    assert "will no longer be able to sign in and their seat is freed" in confirm.text
    assert f'<form method="post" action="{path}/deactivate"' in confirm.text
    assert f'href="{path}?q=ken&amp;page=1" class="button button-quiet">Cancel' in confirm.text
    assert (await member_by_user_name(db, tenant, email)).active
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirm.text))
    assert form["member_id"] == member.id and form["q"] == "ken" and form["csrf_token"]
    r = await browser.post(f"{path}/deactivate", data=form)
    assert r.status_code == 303
    assert r.headers["location"] == f"{path}?q=ken&page=1&notice=deactivated&member={member.id}#member-list"
    page = await browser.get(r.headers["location"])
    assert (
        f"Deactivated {email}. They can no longer sign in" in page.text and "Deactivated</span>" in page.text
    )
    assert f'<form method="get" action="{path}/reactivate">' in page.text
    assert await used_and_purchased(db, tenant) == (0, 100)
    again = await submit(browser, path, "deactivate", member_id=member.id)
    assert again.status_code == 303 and "notice=unchanged" in again.headers["location"]
    page = await browser.get(again.headers["location"])
    assert f"Nothing to change: {email} already had that status." in page.text

    confirm = await browser.get(f"{path}/reactivate", params={"member_id": member.id})
    assert (
        confirm.status_code == 200
        and f"Reactivate {email}?" in confirm.text
        and "will use a seat" in confirm.text
    )
    r = await submit(browser, path, "reactivate", member_id=member.id)
    assert r.status_code == 303
    assert f"Reactivated {email}. They use a seat again." in (await browser.get(r.headers["location"])).text
    assert (await member_by_user_name(db, tenant, email)).active
    assert await used_and_purchased(db, tenant) == (1, 100)


async def test_confirmation_refuses_what_the_form_would(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    path = members_path(tenant)
    idp = await scim_member(db, tenant, unique_email(await own_domain(db, tenant)))
    r = await browser.get(f"{path}/deactivate", params={"member_id": idp})
    assert r.status_code == 403 and "managed by your identity provider" in r.text
    r = await browser.get(f"{path}/deactivate", params={"member_id": "no-such-member"})
    assert r.status_code == 404 and "No user with id" in r.text
    assert (await browser.get(f"{path}/delete", params={"member_id": idp})).status_code == 404
    # Notices name only members of this workspace.
    page = await browser.get(path, params={"notice": "deactivated", "member": "no-such-member"})
    assert (
        page.status_code == 200 and "Deactivated " not in page.text.split("<h1>", 1)[1].split("seat-use")[0]
    )


async def test_removed_members_columns_and_last_change(
    app: object, db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    """Members removed by SCIM DELETE are listed under Removed; each row shows userName, created, last
    changed and who changed it last (the IdP client, or the admin in the console)."""
    domain = await own_domain(db, tenant)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await scim_settings.set_enabled(session, ws, True, by=CLI_ACTOR)
        token = (await token_service.create_token(session, ws, "okta-prod")).token
    scim = {"authorization": f"Bearer {token}", "content-type": "application/scim+json"}
    gone, kept = unique_email(domain, "gone"), unique_email(domain, "kept")
    ids = {}
    for email in (gone, kept):
        r = await browser.post(f"/scim/v2/{tenant.key}/Users", json=scim_user(email), headers=scim)
        assert r.status_code == 201, r.text
        ids[email] = r.json()["id"]
    assert (await browser.delete(f"/scim/v2/{tenant.key}/Users/{ids[gone]}", headers=scim)).status_code == 204
    by_hand = unique_email(domain, "hand")
    await submit(browser, members_path(tenant), "add", email=by_hand, name="Hand Made")
    hand_id = (await member_by_user_name(db, tenant, by_hand)).id
    await submit(browser, members_path(tenant), "deactivate", member_id=hand_id)

    with _statements(app) as seen:
        everyone = await browser.get(members_path(tenant))
    assert len([s for s in seen if "provisioning_events" in s]) == 1  # one query for the whole page
    assert gone not in everyone.text and kept in everyone.text
    head = everyone.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    for column in ("userName", "E-mail", "Created", "Last changed", "Last changed by"):
        assert f'<th scope="col">{column}</th>' in head
    assert _row(everyone.text, kept).count("bearer token okta-prod") == 1
    assert f"{tenant.admin_email} (console)" in _row(everyone.text, by_hand)
    assert re.search(r'<td class="when"><time datetime="\d{4}-\d\d-\d\dT', _row(everyone.text, kept))

    removed = await browser.get(members_path(tenant), params={"status": "removed"})
    assert '<option value="removed" selected>Removed</option>' in removed.text
    row = _row(removed.text, gone)
    assert (
        "Removed</span>" in row
        and "bearer token okta-prod" in row
        and "Removed by your identity provider" in row
    )
    assert kept not in removed.text and by_hand not in removed.text
    assert member_ids(removed.text) == []  # nothing to deactivate or reactivate
    assert removed.text.count('<td class="user-name">') == 1
    found = await browser.get(members_path(tenant), params={"status": "removed", "q": "gone"})
    assert gone in found.text
    none = await browser.get(members_path(tenant), params={"status": "removed", "q": "kept"})
    assert "No member matches" in none.text
    # The seats in use do not count removed members.
    assert await used_and_purchased(db, tenant) == (1, 100)


def scim_user(email: str) -> dict[str, object]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
    }


def _row(html: str, user_name: str) -> str:
    """The table row of the member with ``user_name``."""
    rows = [
        r for r in re.findall(r"<tr>.*?</tr>", html, re.S) if f'<td class="user-name">{user_name}</td>' in r
    ]
    assert len(rows) == 1, user_name
    return rows[0]


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


async def test_reactivation_needs_a_seat(db: Database, app: object) -> None:
    async with new_browser(app) as browser:
        tenant = await signed_in_tenant(db, browser, seats=1)
        domain = await own_domain(db, tenant)
        first, second = unique_email(domain), unique_email(domain)
        await submit(browser, members_path(tenant), "add", email=first, name="First")
        first_id = (await member_by_user_name(db, tenant, first)).id
        await submit(browser, members_path(tenant), "deactivate", member_id=first_id)
        await submit(browser, members_path(tenant), "add", email=second, name="Second")
        r = await submit(browser, members_path(tenant), "reactivate", member_id=first_id)
        assert r.status_code == 403 and "No free seat" in r.text
        assert not (await member_by_user_name(db, tenant, first)).active


async def test_unknown_member_is_404(browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    r = await submit(browser, members_path(tenant), "deactivate", member_id="no-such-member")
    assert r.status_code == 404 and "No user with id" in r.text


async def test_only_admins_of_the_workspace(db: Database, app: object, tenant: OAuthTenant) -> None:
    email = unique_email(await own_domain(db, tenant))
    await scim_member(db, tenant, email)
    async with new_browser(app) as stranger:
        r = await stranger.get(members_path(tenant))
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
        r = await stranger.post(f"{members_path(tenant)}/add", data={"email": email, "name": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
        await sign_in(stranger, await make_admin(db))
        r = await stranger.get(members_path(tenant))
        assert r.status_code == 404 and email not in r.text
        login = await stranger.get("/console/login", follow_redirects=True)
        token = csrf_token(login.text)
        for action in ("add", "deactivate", "reactivate"):
            r = await stranger.post(
                f"{members_path(tenant)}/{action}",
                data={"csrf_token": token, "email": unique_email("x.example"), "name": "x", "member_id": "x"},
            )
            assert r.status_code == 404
    assert await used_and_purchased(db, tenant) == (1, 100)


async def test_forms_need_csrf(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    email = unique_email(await own_domain(db, tenant))
    for action in ("add", "deactivate", "reactivate"):
        r = await browser.post(f"{members_path(tenant)}/{action}", data={"email": email, "name": "x"})
        assert r.status_code == 403 and "This form has expired" in r.text
        r = await browser.post(
            f"{members_path(tenant)}/{action}", data={"csrf_token": "forged", "email": email, "name": "x"}
        )
        assert r.status_code == 403
    assert await used_and_purchased(db, tenant) == (0, 100)
