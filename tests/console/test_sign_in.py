"""Console sign-in and sign-out: labelled form, CSRF, throttling, cookie flags, session ends on sign-out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from provisio.db.engine import Database
from tests.oauth.helpers import PASSWORD, csrf_token, make_oauth_tenant, sign_in


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://provisio.test") as c:
        yield c


async def test_sign_in_form_is_labelled(browser: httpx.AsyncClient) -> None:
    r = await browser.get("/console/login")
    assert r.status_code == 200
    assert '<label for="email">Email</label>' in r.text
    assert '<label for="password">Password</label>' in r.text
    assert ">Sign in</button>" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    cookie = r.headers["set-cookie"]
    assert "provisio_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_sign_in_and_out(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    r = await sign_in(browser, tenant.admin_email.upper())  # e-mail is case-insensitive
    assert r.status_code == 303
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("provisio_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # http base URL in tests; https deployments get Secure
    page = await browser.get("/console/", follow_redirects=True)
    assert page.status_code == 200 and "SCIM provisioning" in page.text
    r = await browser.post("/console/logout", data={"csrf_token": csrf_token(page.text)})
    assert r.status_code == 303
    r = await browser.get("/console/")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


async def test_wrong_password(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    r = await sign_in(browser, tenant.admin_email, "not the password")
    assert r.status_code == 401
    assert "incorrect" in r.text
    r = await sign_in(browser, "nobody@nowhere.example", "whatever-password")
    assert r.status_code == 401


async def test_sign_in_is_throttled(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    for _ in range(5):
        assert (await sign_in(browser, tenant.admin_email, "wrong password!")).status_code == 401
    r = await sign_in(browser, tenant.admin_email, PASSWORD)  # even the right password, for a while
    assert r.status_code == 429
    assert "Too many failed sign-in attempts" in r.text


async def test_sign_in_needs_csrf_token(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    await browser.get("/console/login")
    r = await browser.post("/console/login", data={"email": tenant.admin_email, "password": PASSWORD})
    assert r.status_code == 403
    assert "provisio_session" not in r.headers.get("set-cookie", "")


async def test_next_is_only_a_local_path(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    r = await sign_in(browser, tenant.admin_email, next_path="//evil.example/x")
    assert r.status_code == 303 and r.headers["location"] == "/console/"


async def test_secure_cookies_on_https(app: object, db: Database) -> None:
    from starlette.responses import Response

    from provisio.config import Settings
    from provisio.console.sessions import set_session_cookie

    response = Response()
    set_session_cookie(response, "t", Settings(base_url="https://p.example", secret_key="x"))
    assert "Secure" in response.headers["set-cookie"]
