"""CSRF tokens are bound to the session: a cookie an attacker plants (from a sibling subdomain or over a
plain-http hop) never yields a token a signed-in admin's browser will have accepted, nor does a token
of another session or from before sign-in. Over https every console cookie is ``__Host-`` prefixed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import httpx
import pytest
from sqlalchemy import func, select

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OAuthAuthorizationCode
from provisio.domain import seats as seat_service
from tests.console.pages import billing_path, new_browser, used_and_purchased
from tests.live_server import live_server
from tests.oauth.helpers import (
    PASSWORD,
    OAuthTenant,
    csrf_token,
    make_admin,
    make_oauth_tenant,
    redirect_params,
    sign_in,
)

HTTPS_BASE = "https://provisio.test"


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> OAuthTenant:
    """An Authorization Code workspace (100 seats) whose admin is signed in in ``browser``."""
    tenant = await make_oauth_tenant(db)
    assert (await sign_in(browser, tenant.admin_email)).status_code == 303
    return tenant


def authorize_path(tenant: OAuthTenant) -> str:
    return f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}&state=st"


async def attacker_pair(app: object, name: str = "provisio_csrf") -> tuple[str, str]:
    """What an attacker gets by opening the sign-in form in their own browser: a pre-session cookie and
    its matching token, ready to plant in a victim's browser."""
    async with new_browser(app) as attacker:
        page = await attacker.get("/console/login")
        cookie = attacker.cookies.get(name)
        assert cookie, page.headers.get_list("set-cookie")
        return cookie, csrf_token(page.text)


async def ledger_size(db: Database, tenant: OAuthTenant) -> int:
    async with db.reading() as session:
        return len(await seat_service.ledger(session, tenant.id))


async def codes_issued(db: Database, tenant: OAuthTenant) -> int:
    async with db.reading() as session:
        count = await session.scalar(
            select(func.count()).where(OAuthAuthorizationCode.workspace_id == tenant.id)
        )
    return int(count or 0)


def refused(r: httpx.Response) -> bool:
    return r.status_code == 403 and "This form has expired" in r.text and "location" not in r.headers


async def test_planted_csrf_cookie_buys_nothing_and_approves_nothing(
    db: Database, app: object, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    cookie, token = await attacker_pair(app)
    browser.cookies.set("provisio_csrf", cookie, domain="provisio.test")
    before = (await used_and_purchased(db, tenant), await ledger_size(db, tenant))

    r = await browser.post(f"{billing_path(tenant)}/buy", data={"csrf_token": token, "count": "7"})
    assert refused(r)
    r = await browser.post(authorize_path(tenant), data={"csrf_token": token, "decision": "allow"})
    assert refused(r)

    assert (await used_and_purchased(db, tenant), await ledger_size(db, tenant)) == before
    assert await codes_issued(db, tenant) == 0
    # The admin's own forms still work, planted cookie or not.
    page = await browser.get(billing_path(tenant))
    r = await browser.post(
        f"{billing_path(tenant)}/buy", data={"csrf_token": csrf_token(page.text), "count": "7"}
    )
    assert r.status_code == 303
    assert await used_and_purchased(db, tenant) == (0, 107)
    page = await browser.get(authorize_path(tenant))
    r = await browser.post(
        authorize_path(tenant), data={"csrf_token": csrf_token(page.text), "decision": "allow"}
    )
    assert "code" in redirect_params(r)
    assert await codes_issued(db, tenant) == 1


async def test_token_of_another_session_is_refused(
    db: Database, app: object, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    colleague = await make_admin(db, tenant.key)  # may buy seats for this workspace too
    own_token = csrf_token((await browser.get(billing_path(tenant))).text)
    async with new_browser(app) as other:
        await sign_in(other, colleague)
        other_token = csrf_token((await other.get(billing_path(tenant))).text)
        assert other_token != own_token
        r = await other.post(f"{billing_path(tenant)}/buy", data={"csrf_token": own_token, "count": "7"})
        assert refused(r)
        r = await other.post(authorize_path(tenant), data={"csrf_token": own_token, "decision": "allow"})
        assert refused(r)
        r = await other.post("/console/logout", data={"csrf_token": own_token})
        assert refused(r)
        assert (await other.get(billing_path(tenant))).status_code == 200  # still signed in
    r = await browser.post(f"{billing_path(tenant)}/buy", data={"csrf_token": other_token, "count": "7"})
    assert refused(r)
    assert await used_and_purchased(db, tenant) == (0, 100)
    assert await codes_issued(db, tenant) == 0


async def test_token_from_before_sign_in_is_refused_after(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    login = await browser.get("/console/login")
    before = browser.cookies.get("provisio_csrf")
    token = csrf_token(login.text)
    r = await browser.post(
        "/console/login", data={"email": tenant.admin_email, "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 303
    # Signing in drops the pre-session cookie; planting it back does not help either.
    assert any(c.startswith('provisio_csrf=""') for c in r.headers.get_list("set-cookie"))
    assert browser.cookies.get("provisio_csrf") is None
    assert before
    browser.cookies.set("provisio_csrf", before, domain="provisio.test")
    r = await browser.post(f"{billing_path(tenant)}/buy", data={"csrf_token": token, "count": "7"})
    assert refused(r)
    r = await browser.post(authorize_path(tenant), data={"csrf_token": token, "decision": "allow"})
    assert refused(r)
    assert await used_and_purchased(db, tenant) == (0, 100)
    assert await codes_issued(db, tenant) == 0


async def test_signing_out_and_in_again_voids_tokens(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    await browser.get("/console/login")
    first_cookie = browser.cookies.get("provisio_csrf")
    await sign_in(browser, tenant.admin_email)
    old_token = csrf_token((await browser.get(billing_path(tenant))).text)
    r = await browser.post("/console/logout", data={"csrf_token": old_token})
    assert r.status_code == 303
    login = await browser.get("/console/login")
    assert browser.cookies.get("provisio_csrf") not in (None, first_cookie)  # a new pre-session cookie
    r = await browser.post(
        "/console/login",
        data={"email": tenant.admin_email, "password": PASSWORD, "csrf_token": csrf_token(login.text)},
    )
    assert r.status_code == 303
    r = await browser.post(f"{billing_path(tenant)}/buy", data={"csrf_token": old_token, "count": "7"})
    assert refused(r)
    assert await used_and_purchased(db, tenant) == (0, 100)


async def test_sign_in_form_needs_its_own_cookie(
    db: Database, app: object, browser: httpx.AsyncClient
) -> None:
    """Login CSRF: a token without its cookie, or a session token, does not sign anyone in."""
    tenant = await make_oauth_tenant(db)
    _, token = await attacker_pair(app)
    await browser.get("/console/login")  # a pre-session cookie of its own, not the attacker's
    data = {"email": tenant.admin_email, "password": PASSWORD}
    r = await browser.post("/console/login", data={**data, "csrf_token": token})
    assert refused(r)
    assert not any("provisio_session=" in c for c in r.headers.get_list("set-cookie"))


async def test_sign_out_without_a_session_goes_to_sign_in(browser: httpx.AsyncClient) -> None:
    r = await browser.post("/console/logout", data={"csrf_token": "anything", "next": "/console/x"})
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=%2Fconsole%2Fx"


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain
        {"Origin": "https://evil.example"},
        {"Origin": "http://sub.provisio.test"},
    ],
)
async def test_cross_origin_posts_are_refused_even_with_a_valid_token(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, headers: dict[str, str]
) -> None:
    token = csrf_token((await browser.get(billing_path(tenant))).text)
    r = await browser.post(
        f"{billing_path(tenant)}/buy", data={"csrf_token": token, "count": "7"}, headers=headers
    )
    assert refused(r)
    assert await used_and_purchased(db, tenant) == (0, 100)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},  # what Chromium sends under no-referrer
        {"Origin": "http://provisio.test"},
        {"Origin": "null"},
    ],
)
async def test_same_origin_posts_are_accepted(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, headers: dict[str, str]
) -> None:
    token = csrf_token((await browser.get(billing_path(tenant))).text)
    r = await browser.post(
        f"{billing_path(tenant)}/buy", data={"csrf_token": token, "count": "7"}, headers=headers
    )
    assert r.status_code == 303
    assert await used_and_purchased(db, tenant) == (0, 107)


async def test_a_token_that_is_not_ascii_is_refused(browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    r = await browser.post(f"{billing_path(tenant)}/buy", data={"csrf_token": "jeton-é", "count": "7"})
    assert refused(r)


@pytest.fixture
async def https_app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings.model_copy(update={"base_url": HTTPS_BASE}))
    async with application.router.lifespan_context(application):
        yield application


def set_cookies(r: httpx.Response) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in r.headers.get_list("set-cookie")}


def assert_host_cookie(header: str) -> None:
    parsed = SimpleCookie(header)
    (morsel,) = parsed.values()
    assert morsel.key.startswith("__Host-")
    assert morsel["secure"] and morsel["httponly"] and morsel["path"] == "/" and not morsel["domain"]
    assert morsel["samesite"].lower() == "lax"


async def test_https_cookies_are_host_prefixed(db: Database, https_app: object) -> None:
    tenant = await make_oauth_tenant(db)
    transport = httpx.ASGITransport(app=https_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=HTTPS_BASE) as browser:
        login = await browser.get("/console/login")
        cookies = set_cookies(login)
        assert list(cookies) == ["__Host-provisio_csrf"]
        assert_host_cookie(cookies["__Host-provisio_csrf"])
        r = await browser.post(
            "/console/login",
            data={"email": tenant.admin_email, "password": PASSWORD, "csrf_token": csrf_token(login.text)},
        )
        assert r.status_code == 303
        cookies = set_cookies(r)
        assert set(cookies) == {"__Host-provisio_session", "__Host-provisio_csrf"}  # the latter removed
        for header in cookies.values():
            assert_host_cookie(header)
        assert "Max-Age=0" in cookies["__Host-provisio_csrf"]
        page = await browser.get(billing_path(tenant))
        assert page.status_code == 200
        r = await browser.post(
            f"{billing_path(tenant)}/buy", data={"csrf_token": csrf_token(page.text), "count": "7"}
        )
        assert r.status_code == 303
        r = await browser.post("/console/logout", data={"csrf_token": csrf_token(page.text)})
        assert r.status_code == 303
        (cleared,) = set_cookies(r).values()
        assert_host_cookie(cleared)
        assert cleared.startswith("__Host-provisio_session=") and "Max-Age=0" in cleared
    assert await used_and_purchased(db, tenant) == (0, 107)


async def test_https_ignores_cookies_without_the_prefix(db: Database, https_app: object) -> None:
    """Over https the bare names are what a sibling subdomain could set: they are never read."""
    tenant = await make_oauth_tenant(db)
    cookie, token = await attacker_pair(https_app, "__Host-provisio_csrf")
    transport = httpx.ASGITransport(app=https_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=HTTPS_BASE) as browser:
        browser.cookies.set("provisio_csrf", cookie, domain="provisio.test")
        data = {"email": tenant.admin_email, "password": PASSWORD, "csrf_token": token}
        r = await browser.post("/console/login", data=data)
        assert refused(r)
        await sign_in(browser, tenant.admin_email)
        session = browser.cookies.get("__Host-provisio_session")
        assert session
    async with httpx.AsyncClient(transport=transport, base_url=HTTPS_BASE) as stranger:
        stranger.cookies.set("provisio_session", session, domain="provisio.test")
        r = await stranger.get(billing_path(tenant))
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


async def test_planted_cookie_is_refused_over_real_http(db: Database, database_url: str) -> None:
    """The attack once more through a real uvicorn server and real HTTP headers."""
    tenant = await make_oauth_tenant(db)
    with live_server(database_url) as live:
        async with httpx.AsyncClient(base_url=live.url) as attacker:
            page = await attacker.get("/console/login")
            cookie, token = attacker.cookies["provisio_csrf"], csrf_token(page.text)
        async with httpx.AsyncClient(base_url=live.url) as victim:
            assert (await sign_in(victim, tenant.admin_email)).status_code == 303
            victim.cookies.set("provisio_csrf", cookie, domain="127.0.0.1")
            r = await victim.post(f"{billing_path(tenant)}/buy", data={"csrf_token": token, "count": "7"})
            assert refused(r)
            r = await victim.post(authorize_path(tenant), data={"csrf_token": token, "decision": "allow"})
            assert refused(r)
            page = await victim.get(billing_path(tenant))
            r = await victim.post(
                f"{billing_path(tenant)}/buy", data={"csrf_token": csrf_token(page.text), "count": "1"}
            )
            assert r.status_code == 303
    assert await used_and_purchased(db, tenant) == (0, 101)
    assert await codes_issued(db, tenant) == 0
