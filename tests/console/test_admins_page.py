"""Workspace > Admins through its forms (no JavaScript): the list, *Add admin* by e-mail with the one-time
set-password link shown by exactly one page view, *Remove* through a confirmation page (never the last
admin), the public set-password page, and tenant isolation."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import AdminPasswordToken, CredentialReveal, OutboxMessage
from provisio.domain import admins as account_service
from provisio.domain import workspace_admins as admin_service
from provisio.domain.hashing import hash_secret
from tests.console.pages import new_browser, signed_in_tenant
from tests.oauth.helpers import PASSWORD, OAuthTenant, csrf_token, make_admin, sign_in

LINK_RE = re.compile(r'id="set-password-url" type="text" readonly value="([^"]+)"')
ADMIN_ID_RE = re.compile(r'name="admin_id" value="([^"]+)"')


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> OAuthTenant:
    return await signed_in_tenant(db, browser)


def admins_path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/admins"


def address(local: str = "grace") -> str:
    return f"{local}-{uuid.uuid4().hex[:8]}@admins.example"


async def post(browser: httpx.AsyncClient, tenant: OAuthTenant, action: str, **data: str) -> httpx.Response:
    page = await browser.get(admins_path(tenant))
    assert page.status_code == 200, page.text
    return await browser.post(
        f"{admins_path(tenant)}/{action}", data={"csrf_token": csrf_token(page.text), **data}
    )


async def emails(db: Database, tenant: OAuthTenant) -> list[str]:
    async with db.reading() as session:
        return [a.email for a in await admin_service.list_admins(session, tenant.id)]


async def id_of(db: Database, email: str) -> str:
    async with db.reading() as session:
        admin = await account_service.get_admin_by_email(session, email)
        assert admin is not None
        return admin.id


async def invite(browser: httpx.AsyncClient, tenant: OAuthTenant, email: str) -> str:
    """Add a new admin; the set-password link the inviter's next page shows."""
    r = await post(browser, tenant, "add", email=email)
    assert r.status_code == 303, r.text
    page = await browser.get(r.headers["location"])
    link = LINK_RE.search(page.text)
    assert link, page.text
    return link.group(1)


async def invite_mails(db: Database, email: str) -> list[dict[str, object]]:
    """The set-password e-mails in the outbox for ``email``, oldest first."""
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxMessage.payload)
            .where(OutboxMessage.dedupe_key.like("admin-invite:%"))
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
        payloads = [orjson.loads(p) for (p,) in rows]
    return [p for p in payloads if p["to"] == [email]]


def link_path(link: str) -> str:
    assert link.startswith("http://provisio.test/console/set-password/")
    return link.removeprefix("http://provisio.test")


async def test_the_page_lists_the_admins_and_the_navigation_links_it(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    r = await browser.get(admins_path(tenant))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert "<h1>Admins</h1>" in r.text
    assert tenant.admin_email in r.text and '<span class="badge">You</span>' in r.text
    assert (
        "The last admin" in r.text and "Remove" not in r.text.split('id="add-admin"')[0].split("</thead>")[1]
    )
    nav = re.search(r'<nav class="workspace-nav".*?</nav>', r.text, re.S)
    assert nav and f'href="{admins_path(tenant)}" aria-current="page">Admins' in nav.group(0)
    members = await browser.get(f"/console/workspaces/{tenant.key}/members")
    assert f'href="{admins_path(tenant)}">Admins</a>' in members.text
    assert '<label for="admin-email">' in r.text


async def test_adding_a_new_address_shows_the_set_password_link_once(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, app: object
) -> None:
    email = address()
    r = await post(browser, tenant, "add", email=email)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(admins_path(tenant) + "?notice=invited") and "set-password" not in location
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("provisio_invite=") and "HttpOnly" in cookie
    page = await browser.get(location)
    link = LINK_RE.search(page.text)
    assert link and page.text.index("set-password-link") < page.text.index("admin-list")
    assert f"Added {email} as an admin of {tenant.name}" in page.text
    assert "Not set yet" in page.text and f"{tenant.admin_email} (console)" in page.text
    # The token is in the link only: the database has its hash, the reveal row is gone.
    token = link.group(1).rsplit("/", 1)[1]
    async with db.reading() as session:
        stored = (
            await session.execute(
                select(AdminPasswordToken).where(AdminPasswordToken.token_hash == hash_secret(token))
            )
        ).scalar_one()
        assert stored.admin_id == await id_of(db, email)
        assert (await session.execute(select(CredentialReveal.id))).all() == []
    again = await browser.get(location)  # a reload: the notice, never the link
    assert again.status_code == 200 and not LINK_RE.search(again.text) and token not in again.text
    assert f"Added {email}" in again.text
    # The link is e-mailed to the new admin too, in the transaction that made it.
    [mail] = await invite_mails(db, email)
    assert link.group(1) in str(mail["text"]) and link.group(1) in str(mail["html"])
    assert tenant.name in str(mail["subject"]) and "72 hours" in str(mail["text"])
    # The link opens the set-password page in a browser that is not signed in.
    async with new_browser(app) as stranger:
        form = await stranger.get(link_path(link.group(1)))
        assert form.status_code == 200 and email in form.text and "Set your password" in form.text


async def test_an_existing_account_is_granted_without_a_link(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    other = await make_admin(db)  # an admin of another workspace
    r = await post(browser, tenant, "add", email=other.upper())
    assert r.status_code == 303 and "notice=granted" in r.headers["location"]
    assert "set-cookie" not in r.headers
    page = await browser.get(r.headers["location"])
    assert not LINK_RE.search(page.text)
    assert (
        f"{other} is now an admin of {tenant.name} and signs in with the password they already have"
        in page.text
    )
    assert await emails(db, tenant) == [tenant.admin_email, other]
    twice = await post(browser, tenant, "add", email=other)
    assert twice.status_code == 409 and f"{other} is already an admin" in twice.text
    assert 'aria-invalid="true"' in twice.text


@pytest.mark.parametrize(
    "bad", ["", "not-an-address", "ada@localhost", "ada\x00@acme.example", "a\x1b@acme.example", "a,b@x.io"]
)
async def test_an_invalid_address_is_refused_on_the_page(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, bad: str
) -> None:
    r = await post(browser, tenant, "add", email=bad)
    assert r.status_code == 400 and "is not an e-mail address" in r.text and 'id="page-error"' in r.text
    assert r.headers["content-type"].startswith("text/html")
    assert await emails(db, tenant) == [tenant.admin_email]


@pytest.mark.parametrize("bad", ["\x00", "x\x00y", "\x07"])
async def test_an_admin_id_with_a_control_character_is_not_found(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, bad: str
) -> None:
    await make_admin(db, tenant.key)
    r = await post(browser, tenant, "remove", admin_id=bad)
    assert r.status_code == 404 and "is not an admin of this workspace" in r.text
    assert r.headers["content-type"].startswith("text/html")
    assert len(await emails(db, tenant)) == 2


async def test_an_account_another_workspace_invited_is_granted_without_showing_its_link(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, app: object
) -> None:
    """An admin of this workspace invites v; an admin of another adds v too. Seeing a link would let the
    second choose v's password and enter this workspace: they see none, and the link the first saw stops
    working (it would open both). A new one is e-mailed to v alone."""
    victim = address("victim")
    first_link = await invite(browser, tenant, victim)
    async with new_browser(app) as other_browser:
        other = await signed_in_tenant(db, other_browser)
        r = await post(other_browser, other, "add", email=victim)
        assert r.status_code == 303 and "notice=granted-mailed" in r.headers["location"]
        assert "set-cookie" not in r.headers
        page = await other_browser.get(r.headers["location"])
        assert page.status_code == 200 and not LINK_RE.search(page.text) and "/set-password/" not in page.text
        assert f"{victim} is now an admin of {other.name}. They have not set a password yet" in page.text
        assert "The only admin who can sign in" in page.text  # the other's own admin
    async with new_browser(app) as stranger:
        assert (await stranger.get(link_path(first_link))).status_code == 404
        mails = await invite_mails(db, victim)
        assert len(mails) == 2 and first_link in str(mails[0]["text"])
        newest = re.search(r"http://provisio\.test/console/set-password/\S+", str(mails[1]["text"]))
        assert newest and newest.group(0) != first_link
        form = await stranger.get(link_path(newest.group(0)))
        assert form.status_code == 200 and victim in form.text
    # Adding them again here shows no link either while the other workspace has them.
    again = await post(browser, tenant, "add", email=victim)
    assert again.status_code == 303 and "notice=granted-mailed" in again.headers["location"]
    assert "set-cookie" not in again.headers


async def test_the_only_admin_who_can_sign_in_cannot_leave_the_invited_ones_alone(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    await invite(browser, tenant, address("invited"))
    page = await browser.get(admins_path(tenant))
    assert "The only admin who can sign in" in page.text
    me = await id_of(db, tenant.admin_email)
    r = await post(browser, tenant, "remove", admin_id=me)
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
    assert f"{tenant.admin_email} is the only admin of {tenant.name} who can sign in" in r.text
    assert tenant.admin_email in await emails(db, tenant)


async def test_a_form_without_its_csrf_token_changes_nothing(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    r = await browser.post(f"{admins_path(tenant)}/add", data={"email": address()})
    assert r.status_code == 403 and "This form has expired" in r.text
    second = await make_admin(db, tenant.key)
    r = await browser.post(f"{admins_path(tenant)}/remove", data={"admin_id": await id_of(db, second)})
    assert r.status_code == 403
    assert await emails(db, tenant) == [tenant.admin_email, second]


async def test_remove_goes_through_a_confirmation_and_the_notice_names_the_admin(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, app: object
) -> None:
    second = await make_admin(db, tenant.key)
    async with new_browser(app) as theirs:
        assert (await sign_in(theirs, second)).status_code == 303
        assert (await theirs.get(admins_path(tenant))).status_code == 200
        page = await browser.get(admins_path(tenant))
        second_id = await id_of(db, second)
        assert second_id in ADMIN_ID_RE.findall(page.text)
        confirm = await browser.get(f"{admins_path(tenant)}/remove", params={"admin_id": second_id})
        assert confirm.status_code == 200
        assert f"Remove {second} as an admin?" in confirm.text
        assert (
            f"{second} will at once no longer be able to open or change anything of {tenant.name}"
            in confirm.text
        )
        assert f'action="{admins_path(tenant)}/remove"' in confirm.text and "Cancel" in confirm.text
        assert await emails(db, tenant) == [tenant.admin_email, second]  # the GET changed nothing
        r = await browser.post(
            f"{admins_path(tenant)}/remove",
            data={"csrf_token": csrf_token(confirm.text), "admin_id": second_id},
        )
        assert r.status_code == 303 and "notice=removed" in r.headers["location"]
        done = await browser.get(r.headers["location"])
        assert f"Removed {second}: they can no longer open the pages of {tenant.name}." in done.text
        assert await emails(db, tenant) == [tenant.admin_email]
        # Their open session no longer reaches the workspace.
        assert (await theirs.get(admins_path(tenant))).status_code == 404
    # A forged notice names nobody.
    forged = await browser.get(
        admins_path(tenant), params={"notice": "removed", "admin": "x@evil.example", "tag": "0"}
    )
    assert "x@evil.example" not in forged.text


async def test_the_last_admin_cannot_be_removed_and_an_admin_can_leave(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    me = await id_of(db, tenant.admin_email)
    r = await post(browser, tenant, "remove", admin_id=me)
    assert r.status_code == 409
    assert f"{tenant.admin_email} is the last admin of {tenant.name} and cannot be removed" in r.text
    await make_admin(db, tenant.key)
    confirm = await browser.get(f"{admins_path(tenant)}/remove", params={"admin_id": me})
    assert "You will at once no longer be able to open or change anything" in confirm.text
    r = await browser.post(
        f"{admins_path(tenant)}/remove", data={"csrf_token": csrf_token(confirm.text), "admin_id": me}
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    assert (await browser.get(admins_path(tenant))).status_code == 404
    assert tenant.admin_email not in await emails(db, tenant)


async def test_an_admin_of_one_workspace_cannot_see_or_change_the_admins_of_another(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, app: object
) -> None:
    async with new_browser(app) as other_browser:
        other = await signed_in_tenant(db, other_browser)
        second = await make_admin(db, other.key)
        foreign_id = await id_of(db, second)
        r = await browser.get(admins_path(other))
        assert r.status_code == 404 and "Workspace not found" in r.text and second not in r.text
        mine = await browser.get(admins_path(tenant))
        token = csrf_token(mine.text)
        for action, data in [("add", {"email": address()}), ("remove", {"admin_id": foreign_id})]:
            r = await browser.post(f"{admins_path(other)}/{action}", data={"csrf_token": token, **data})
            assert r.status_code == 404
        # Nor through its own page: another workspace's admin is not found here.
        await make_admin(db, tenant.key)
        r = await browser.get(f"{admins_path(tenant)}/remove", params={"admin_id": foreign_id})
        assert r.status_code == 404 and second not in r.text
        r = await browser.post(
            f"{admins_path(tenant)}/remove", data={"csrf_token": token, "admin_id": foreign_id}
        )
        assert r.status_code == 404 and "is not an admin of this workspace" in r.text
        assert await emails(db, other) == [other.admin_email, second]


async def test_the_set_password_page(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, app: object
) -> None:
    email = address("new")
    path = link_path(await invite(browser, tenant, email))
    async with new_browser(app) as fresh:
        form = await fresh.get(path)
        assert form.status_code == 200 and 'autocomplete="new-password"' in form.text
        token = csrf_token(form.text)
        short = "x" * (account_service.MIN_PASSWORD_LENGTH - 1)
        r = await fresh.post(path, data={"csrf_token": token, "password": short, "confirmation": short})
        assert r.status_code == 400 and f"at least {account_service.MIN_PASSWORD_LENGTH} characters" in r.text
        r = await fresh.post(
            path, data={"csrf_token": token, "password": PASSWORD, "confirmation": PASSWORD + "!"}
        )
        assert r.status_code == 400 and "not the same" in r.text
        assert (
            await fresh.post(path, data={"password": PASSWORD, "confirmation": PASSWORD})
        ).status_code == 403
        r = await fresh.post(path, data={"csrf_token": token, "password": PASSWORD, "confirmation": PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/console/login?notice=password-set"
        login = await fresh.get(r.headers["location"])
        assert "Your password is set" in login.text
        assert (await sign_in(fresh, email)).status_code == 303
        assert (await fresh.get(admins_path(tenant))).status_code == 200
        # Used: the link now explains itself, on GET and POST alike, and changes nothing.
        used = await fresh.get(path)
        assert used.status_code == 404 and "This link does not work" in used.text
        assert "has been used" in used.text
        again = {"csrf_token": csrf_token(used.text), "password": "x" * 20, "confirmation": "x" * 20}
        reused = await fresh.post(path, data=again)
        assert reused.status_code == 404 and "This link does not work" in reused.text
    async with db.reading() as session:
        stored = await account_service.stored_credentials(session, email)
    assert (await account_service.check_password(stored, PASSWORD))[0]
    page = await browser.get(admins_path(tenant))
    assert 'status-pending">Not set yet' not in page.text


@pytest.mark.parametrize("token", ["unknown-token", "x" * 43, "%E2%80%AE", "a" * 2000])
async def test_an_unknown_set_password_link_is_a_clear_page(browser: httpx.AsyncClient, token: str) -> None:
    r = await browser.get(f"/console/set-password/{token}")
    assert r.status_code == 404 and "This link does not work" in r.text and "Traceback" not in r.text
    assert r.headers["content-type"].startswith("text/html")
    login = await browser.get("/console/login")  # a form token of this browser's pre-session
    posted = await browser.post(f"/console/set-password/{token}", data={"csrf_token": csrf_token(login.text)})
    assert posted.status_code == 404 and "This link does not work" in posted.text
