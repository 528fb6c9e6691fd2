"""Sign-in links (``POST /api/v1/workspaces/{key}/portal-links``): made with an operator key, opened once
in a browser, into one workspace's SCIM settings, with a way back to the host application."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI
from sqlalchemy import func, select, update

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import Admin, ConsoleSession, PortalLink, WorkspaceAdmin, utcnow
from provisio.domain import admins as account_service
from provisio.domain import api_keys
from provisio.domain import workspace_admins as admin_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.hashing import hash_secret
from provisio.domain.scim_methods import ScimMethod
from tests.api.conftest import new_key
from tests.api.test_auth_and_problems import problem
from tests.conftest import BASE_URL
from tests.oauth.helpers import (
    OKTA_CALLBACK,
    OAuthTenant,
    consent,
    csrf_token,
    make_oauth_tenant,
    okta_user,
    redirect_params,
    sign_in,
)

try:  # Authlib's client runs on httpx2 when it is installed, on httpx otherwise.
    import httpx2 as client_http
except ImportError:  # pragma: no cover
    import httpx as client_http  # type: ignore[no-redef]

ALLOW = "https://app.example.com/settings, http://127.0.0.1:5555"
RETURN_URL = "https://app.example.com/settings/scim?tab=provisioning"
BACK_LINK = re.compile(r'<a class="back-link" id="back-to-host" href="([^"]*)">Back to ([^<]*)</a>')
ASK = "ask your application for a new link"


@pytest.fixture(scope="module")
async def portal_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The shared test app's settings, with an allow-list of return URLs."""
    application = create_app(settings.model_copy(update={"portal_return_urls": ALLOW}))
    async with application.router.lifespan_context(application):
        yield application


def new_browser(app: FastAPI) -> httpx.AsyncClient:
    """A person's browser: keeps cookies, never follows redirects."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


@pytest.fixture
async def http(portal_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(portal_app) as c:
        yield c


@pytest.fixture
async def browser(portal_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(portal_app) as c:
        yield c


async def workspace(db: Database, method: ScimMethod = ScimMethod.BEARER) -> OAuthTenant:
    """A workspace with one admin who signs in with a password (``admin_email``)."""
    if method is ScimMethod.AUTHORIZATION_CODE:
        return await make_oauth_tenant(db)
    return await make_oauth_tenant(db, method, redirect_uris=(), enabled=False, credentials=False)


def person(local: str = "pat") -> str:
    return f"{local}-{uuid.uuid4().hex[:8]}@host-app.example"


async def make_link(
    http: httpx.AsyncClient, api: dict[str, str], key: str, email: str, **extra: Any
) -> dict[str, Any]:
    body = {"email": email, "return_url": RETURN_URL} | extra
    r = await http.post(f"/api/v1/workspaces/{key}/portal-links", json=body, headers=api)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def path_of(link: dict[str, Any]) -> str:
    url: str = link["url"]
    assert url.startswith(BASE_URL + "/console/portal/")
    return url.removeprefix(BASE_URL)


def scim_page(key: str) -> str:
    return f"/console/workspaces/{key}/settings/advanced"


async def sessions_of(db: Database, email: str) -> int:
    async with db.reading() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(ConsoleSession)
                .join(Admin, Admin.id == ConsoleSession.admin_id)
                .where(Admin.email_lower == email.lower())
            )
            or 0
        )


async def grants(db: Database, email: str) -> list[tuple[str, str | None]]:
    """The workspaces (ids) of the accounts with ``email``, and who granted each."""
    async with db.reading() as session:
        rows = await session.execute(
            select(WorkspaceAdmin.workspace_id, WorkspaceAdmin.added_by)
            .join(Admin, Admin.id == WorkspaceAdmin.admin_id)
            .where(Admin.email_lower == email.lower())
        )
        return [(r.workspace_id, r.added_by) for r in rows]


async def accounts(db: Database, email: str) -> list[Admin]:
    async with db.reading() as session:
        result = await session.execute(select(Admin).where(Admin.email_lower == email.lower()))
        return list(result.scalars())


def assert_refused_page(r: httpx.Response, status: int, what: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert what in r.text
    assert ASK in r.text.lower()
    assert "set-cookie" not in r.headers or "provisio_session=" not in r.headers["set-cookie"]


# --- the link works once ------------------------------------------------------------------------------


async def test_a_link_signs_in_once_and_lands_on_the_scim_settings(
    portal_app: FastAPI,
    http: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    db: Database,
    api: dict[str, str],
) -> None:
    tenant = await workspace(db)
    email = person()
    link = await make_link(http, api, tenant.key, email)
    assert set(link) >= {"url", "expires_at"}
    assert link["workspace"] == tenant.key and link["email"] == email and link["return_url"] == RETURN_URL
    token = path_of(link).rsplit("/", 1)[1]

    # Stored hashed, for five minutes, with the key that made it.
    async with db.reading() as session:
        row = (
            await session.execute(select(PortalLink).where(PortalLink.token_hash == hash_secret(token)))
        ).scalar_one()
        key = await api_keys.find_live_key(session, api["Authorization"].removeprefix("Bearer "))
    assert key is not None and row.api_key_id == key.id
    assert row.workspace_id == tenant.id and row.email == email and row.return_url == RETURN_URL
    assert row.expires_at - row.created_at == timedelta(minutes=5) and row.used_at is None
    assert datetime.fromisoformat(link["expires_at"]) == row.expires_at
    assert not any(token in str(value) for value in vars(row).values())

    opened = await browser.get(path_of(link))
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == scim_page(tenant.key)
    assert opened.headers["cache-control"] == "no-store"
    assert opened.headers["referrer-policy"] == "no-referrer"
    assert "provisio_session" in browser.cookies
    page = await browser.get(opened.headers["location"])
    assert page.status_code == 200, page.text
    assert "<h1>SCIM provisioning</h1>" in page.text and email in page.text
    assert BACK_LINK.findall(page.text) == [(RETURN_URL.replace("&", "&amp;"), "app.example.com")]
    # For the rest of the session, on every page.
    other = await browser.get(f"/console/workspaces/{tenant.key}/members")
    assert other.status_code == 200
    assert BACK_LINK.search(other.text)

    # The person was made an admin (no password: the link is how they sign in), recorded as the key's.
    [account] = await accounts(db, email)
    assert account.password_hash is None
    assert await grants(db, email) == [(tenant.id, "API key host app (sign-in link)")]
    async with db.reading() as session:
        spent = await session.get(PortalLink, row.id)
    assert spent is not None and spent.used_at is not None

    # Once: the same link again, in this browser or another, signs nobody in.
    async with new_browser(portal_app) as elsewhere:
        again = await elsewhere.get(path_of(link))
        assert_refused_page(again, 410, "has been used already")
        assert BACK_LINK.search(again.text) is None  # nobody is signed in there
        assert 'href="https://app.example.com/settings/scim?tab=provisioning"' in again.text
        assert (await elsewhere.get(scim_page(tenant.key))).status_code == 303  # to the sign-in page
    assert await sessions_of(db, email) == 1


async def test_without_a_return_url_there_is_no_back_link(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    tenant = await workspace(db)
    r = await http.post(
        f"/api/v1/workspaces/{tenant.key}/portal-links", json={"email": tenant.admin_email}, headers=api
    )
    assert r.status_code == 201, r.text
    assert r.json()["return_url"] is None
    opened = await browser.get(path_of(r.json()))
    page = await browser.get(opened.headers["location"])
    assert page.status_code == 200 and "SCIM provisioning" in page.text
    assert "back-to-host" not in page.text


async def test_an_expired_link_is_refused(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    tenant = await workspace(db)
    email = person()
    link = await make_link(http, api, tenant.key, email)
    token = path_of(link).rsplit("/", 1)[1]
    async with db.writing() as session:
        await session.execute(
            update(PortalLink)
            .where(PortalLink.token_hash == hash_secret(token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = await browser.get(path_of(link))
    assert_refused_page(r, 410, "has expired")
    assert "5 minutes" in r.text
    assert await accounts(db, email) == []  # nobody was made an admin
    assert (await browser.get(scim_page(tenant.key))).status_code == 303


@pytest.mark.parametrize(
    "token",
    [
        "A" * 43,  # well-formed, never made
        "short",
        "A" * 42 + "!",
        "A" * 44,
        "x" * 2000,
        "%E2%82%AC" * 10,
    ],
)
async def test_an_unknown_or_malformed_link_is_a_console_page(browser: httpx.AsyncClient, token: str) -> None:
    r = await browser.get(f"/console/portal/{token}")
    assert_refused_page(r, 404, "is not valid")
    assert "provisio" in r.text and "console.css" in r.text  # the console's own look


async def test_a_revoked_keys_links_stop_working(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, db: Database
) -> None:
    tenant = await workspace(db)
    issued = await new_key(db, "to revoke")
    link = await make_link(http, {"Authorization": f"Bearer {issued.key}"}, tenant.key, tenant.admin_email)
    async with db.writing() as session:
        await api_keys.revoke_key(session, issued.id)
    assert_refused_page(await browser.get(path_of(link)), 410, "has been revoked")
    assert await sessions_of(db, tenant.admin_email) == 0


# --- one workspace only -------------------------------------------------------------------------------


async def test_a_link_reaches_its_workspace_only(
    portal_app: FastAPI,
    http: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    db: Database,
    api: dict[str, str],
) -> None:
    """The person administers A and B with a password; the host application vouches for B only."""
    a = await workspace(db, ScimMethod.AUTHORIZATION_CODE)
    b = await workspace(db)
    async with db.writing() as session:
        admin = await account_service.get_admin_by_email(session, a.admin_email)
        assert admin is not None
        await account_service.grant_workspace(
            session, admin, await workspace_service.require_workspace(session, b.key)
        )
    link = await make_link(http, api, b.key, a.admin_email)
    opened = await browser.get(path_of(link))
    assert opened.headers["location"] == scim_page(b.key)

    assert (await browser.get(scim_page(b.key))).status_code == 200
    for path in (
        scim_page(a.key),
        f"/console/workspaces/{a.key}/members",
        f"/console/workspaces/{a.key}/admins",
    ):
        r = await browser.get(path)
        assert r.status_code == 404, path
        assert "Workspace not found" in r.text and "opens one workspace only" in r.text
    home = await browser.get("/console/")
    assert home.status_code == 303 and home.headers["location"] == scim_page(b.key)
    # Nor can the session answer A's consent page.
    authorize = f"{a.authorization_path}?response_type=code&client_id={a.client_id}&state=s"
    refused = await browser.get(authorize)
    assert refused.status_code == 403 and "Only an admin of" in refused.text
    # A form of A's, with this session's own CSRF token, changes nothing.
    token = csrf_token((await browser.get(scim_page(b.key))).text)
    r = await browser.post(
        f"{scim_page(a.key)}/scim/enabled", data={"csrf_token": token}
    )  # would turn SCIM off
    assert r.status_code == 404
    async with db.reading() as session:
        assert (await workspace_service.require_workspace(session, a.key)).scim_enabled is True

    # With the password, as before: every workspace of the account.
    async with new_browser(portal_app) as password_browser:
        assert (await sign_in(password_browser, a.admin_email)).status_code == 303
        assert (await password_browser.get(scim_page(a.key))).status_code == 200
        assert (await password_browser.get(scim_page(b.key))).status_code == 200
        assert "back-to-host" not in (await password_browser.get(scim_page(b.key))).text


async def test_another_workspaces_link_does_not_touch_this_one(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    a, b = await workspace(db), await workspace(db)
    email = person()
    link = await make_link(http, api, b.key, email)
    await browser.get(path_of(link))
    assert [w for w, _ in await grants(db, email)] == [b.id]
    assert (await browser.get(scim_page(a.key))).status_code == 404
    async with db.reading() as session:
        assert [x.email for x in await admin_service.list_admins(session, a.id)] == [a.admin_email]


# --- the API --------------------------------------------------------------------------------------------


async def test_missing_wrong_or_revoked_keys_are_401_problems(http: httpx.AsyncClient, db: Database) -> None:
    tenant = await workspace(db)
    path = f"/api/v1/workspaces/{tenant.key}/portal-links"
    body = {"email": person()}
    r = await http.post(path, json=body)
    problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    problem(await http.post(path, json=body, headers={"Authorization": "Bearer pvk_nope"}), 401)
    issued = await new_key(db, "soon revoked")
    async with db.writing() as session:
        await api_keys.revoke_key(session, issued.id)
    problem(await http.post(path, json=body, headers={"Authorization": f"Bearer {issued.key}"}), 401)
    async with db.reading() as session:
        made = await session.scalar(
            select(func.count()).select_from(PortalLink).where(PortalLink.workspace_id == tenant.id)
        )
    assert made == 0


async def test_refusals_are_problem_documents(
    http: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    tenant = await workspace(db)
    path = f"/api/v1/workspaces/{tenant.key}/portal-links"

    body = problem(
        await http.post("/api/v1/workspaces/no-such-ws/portal-links", json={"email": person()}, headers=api),
        404,
    )
    assert "no-such-ws" in str(body["detail"])

    for email in ("not-an-address", "a b@example.com", "ada@", "x@y@example.com"):
        body = problem(await http.post(path, json={"email": email}, headers=api), 422)
        assert [e["field"] for e in body["errors"]] == ["email"], body  # type: ignore[union-attr]
        assert "e-mail address" in str(body["detail"])

    for url in (
        "https://app.example.com.evil.com/settings",
        "https://evil.example/settings",
        "https://app.example.com/other",
        "http://app.example.com/settings",
        "https://app.example.com@evil.example/settings",
        "javascript:alert(1)",
        "https://[::1/settings",  # what urlsplit itself refuses
        "https://[app.example.com]/settings",
    ):
        body = problem(await http.post(path, json={"email": person(), "return_url": url}, headers=api), 422)
        assert body["errors"] == [  # type: ignore[comparison-overlap]
            {"field": "return_url", "in": "body", "detail": body["detail"]}
        ], body
        assert "return_url" in str(body["detail"])

    both = problem(
        await http.post(path, json={"email": "nope", "return_url": "https://evil.example/"}, headers=api), 422
    )
    assert sorted(e["field"] for e in both["errors"]) == ["email", "return_url"]  # type: ignore[union-attr]

    # The framework's own validation: unknown fields, missing or mistyped ones.
    for bad in ({}, {"email": person(), "extra": 1}, {"email": 5}, {"email": "a\x00b@example.com"}):
        problem(await http.post(path, json=bad, headers=api), 422)
    r = await http.get(path, headers=api)
    problem(r, 405)
    assert r.headers["allow"] == "POST"

    async with db.reading() as session:
        made = await session.scalar(
            select(func.count()).select_from(PortalLink).where(PortalLink.workspace_id == tenant.id)
        )
    assert made == 0


async def test_no_return_url_is_accepted_without_an_allow_list(
    client: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    """The shared app sets no PROVISIO_PORTAL_RETURN_URLS."""
    tenant = await workspace(db)
    path = f"/api/v1/workspaces/{tenant.key}/portal-links"
    body = problem(
        await client.post(path, json={"email": person(), "return_url": RETURN_URL}, headers=api), 422
    )
    assert "PROVISIO_PORTAL_RETURN_URLS" in str(body["detail"])
    assert (await client.post(path, json={"email": person()}, headers=api)).status_code == 201


async def test_the_route_is_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/workspaces/{key}/portal-links"]["post"]
    assert {"201", "401", "404", "422"} <= set(operation["responses"])


# --- sessions -------------------------------------------------------------------------------------------


async def test_a_link_replaces_the_browsers_session_and_binds_csrf_to_the_new_one(
    portal_app: FastAPI,
    http: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    db: Database,
    api: dict[str, str],
) -> None:
    before = await workspace(db)
    assert (await sign_in(browser, before.admin_email)).status_code == 303
    old_cookie = browser.cookies["provisio_session"]
    old_csrf = csrf_token((await browser.get(scim_page(before.key))).text)

    tenant = await workspace(db)
    email = person()
    await browser.get(path_of(await make_link(http, api, tenant.key, email)))
    new_cookie = browser.cookies["provisio_session"]
    assert new_cookie != old_cookie
    assert await sessions_of(db, before.admin_email) == 0  # the session the browser came with has ended
    async with new_browser(portal_app) as stale:
        stale.cookies.set("provisio_session", old_cookie)
        assert (await stale.get(scim_page(before.key))).status_code == 303

    # The old session's CSRF token is refused; the new session's page token works.
    r = await browser.post("/console/logout", data={"csrf_token": old_csrf})
    assert r.status_code == 403
    token = csrf_token((await browser.get(scim_page(tenant.key))).text)
    r = await browser.post("/console/logout", data={"csrf_token": token})
    assert r.status_code == 303
    assert await sessions_of(db, email) == 0


async def test_two_opens_at_once_sign_in_once(
    portal_app: FastAPI, http: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    tenant = await workspace(db)
    for _ in range(3):
        email = person()
        link = await make_link(http, api, tenant.key, email)
        browsers = [new_browser(portal_app) for _ in range(4)]
        try:
            answers = await asyncio.gather(*(b.get(path_of(link)) for b in browsers))
        finally:
            for b in browsers:
                await b.aclose()
        assert sorted(r.status_code for r in answers) == [303, 410, 410, 410]
        assert await sessions_of(db, email) == 1
        assert len(await accounts(db, email)) == 1


async def test_the_admin_is_made_once_and_an_existing_one_is_left_as_it_is(
    portal_app: FastAPI, http: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    tenant = await workspace(db)
    email = person()
    # Several links for the same new person, opened at once: one account, one grant.
    links = [await make_link(http, api, tenant.key, email.upper() if i % 2 else email) for i in range(3)]
    browsers = [new_browser(portal_app) for _ in links]
    try:
        answers = await asyncio.gather(
            *(b.get(path_of(link)) for b, link in zip(browsers, links, strict=True))
        )
    finally:
        for b in browsers:
            await b.aclose()
    assert [r.status_code for r in answers] == [303, 303, 303]
    assert len(await accounts(db, email)) == 1
    assert len(await grants(db, email)) == 1
    assert await sessions_of(db, email) == 3

    # An admin with a password keeps it, and gets no new grant.
    [before] = await accounts(db, tenant.admin_email)
    async with new_browser(portal_app) as b:
        assert (
            await b.get(path_of(await make_link(http, api, tenant.key, tenant.admin_email)))
        ).status_code == 303
    [after] = await accounts(db, tenant.admin_email)
    assert after.password_hash == before.password_hash is not None
    assert [w for w, _ in await grants(db, tenant.admin_email)] == [tenant.id]
    assert (await grants(db, tenant.admin_email))[0][1] != "API key host app (sign-in link)"


async def test_a_pending_invite_keeps_working(
    portal_app: FastAPI, http: httpx.AsyncClient, db: Database, api: dict[str, str]
) -> None:
    """Someone invited by e-mail (set-password link) who comes through the host application first."""
    tenant = await workspace(db)
    email = person("invited")
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        invite = await admin_service.add_admin(session, ws, email, actor="test")
    assert invite.token
    async with new_browser(portal_app) as b:
        assert (await b.get(path_of(await make_link(http, api, tenant.key, email)))).status_code == 303
    async with db.reading() as session:
        assert (await admin_service.admin_for_token(session, invite.token)).email == email
    assert len(await grants(db, email)) == 1


# --- OAuth consent with a portal session ----------------------------------------------------------------


async def test_okta_authorization_with_a_portal_session(
    portal_app: FastAPI,
    http: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    db: Database,
    api: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Portal link → Okta's authorization request → consent → code → token → SCIM."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the test server is plain http over ASGI
    tenant = await workspace(db, ScimMethod.AUTHORIZATION_CODE)
    email = person("it")
    opened = await browser.get(path_of(await make_link(http, api, tenant.key, email)))
    assert opened.status_code == 303

    okta = AsyncOAuth2Client(
        client_id=tenant.client_id,
        client_secret=tenant.client_secret,
        transport=client_http.ASGITransport(app=portal_app),  # type: ignore[arg-type]
        base_url=BASE_URL,
        redirect_uri=OKTA_CALLBACK,
    )
    try:
        url, state = okta.create_authorization_url(f"{BASE_URL}{tenant.authorization_path}")
        page = await browser.get(url)  # signed in already: straight to the consent page
        assert page.status_code == 200, page.text
        assert "Allow access" in page.text and tenant.name in page.text and email in page.text
        params = redirect_params(await consent(browser, url))
        assert params["state"] == state
        token = await okta.fetch_token("/oauth/token", code=params["code"], state=state)
    finally:
        await okta.aclose()
    r = await http.post(
        f"{tenant.scim_base}/Users",
        json=okta_user(f"ada-{uuid.uuid4().hex[:6]}@acme.example"),
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert r.status_code == 201, r.text
