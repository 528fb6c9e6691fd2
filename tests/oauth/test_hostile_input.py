"""Hostile input on every OAuth endpoint: whatever a client sends in a header, the query or the body, the
answer is the protocol's own error (RFC 6749 §4.1.2.1 and §5.2, RFC 7009 §2.2.1), never a 5xx, and a
refused request leaves every code and token row as it was."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisio.db.engine import Database
from provisio.domain.scim_methods import ScimMethod
from tests.conftest import BASE_URL
from tests.oauth.helpers import (
    OKTA_CALLBACK,
    Grants,
    OAuthTenant,
    csrf_token,
    grant_rows,
    make_oauth_tenant,
    seed_grants,
    sign_in,
)

TOKEN_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
}
REVOKE_ERRORS = TOKEN_ERRORS | {"unsupported_token_type"}
AUTHORIZE_ERRORS = {
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
}
FORM = "application/x-www-form-urlencoded"
# RFC 6749 §5.2: error_description is ASCII without '"' and '\\'.
DESCRIPTION_CHARS = {chr(c) for c in range(0x20, 0x7F)} - {'"', "\\"}


def basic(raw: bytes) -> bytes:
    return b"Basic " + base64.b64encode(raw)


def basic_pair(client_id: str, secret: str) -> bytes:
    return basic(f"{client_id}:{secret}".encode())


@dataclass
class Ctx:
    code: OAuthTenant  # an Authorization Code client, with a live code and token pair
    cc: OAuthTenant  # a Client Credentials client
    grants: Grants

    def code_basic(self) -> bytes:
        return basic_pair(self.code.client_id, self.code.client_secret)

    def cc_basic(self) -> bytes:
        return basic_pair(self.cc.client_id, self.cc.client_secret)


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""


def token(
    auth: Callable[[Ctx], bytes | None], body: Callable[[Ctx], bytes], content_type: bytes = FORM.encode()
):
    def build(ctx: Ctx) -> Req:
        headers = [(b"content-type", content_type)] if content_type else []
        value = auth(ctx)
        if value is not None:
            headers.append((b"authorization", value))
        return Req("POST", "/oauth/token", headers, body(ctx))

    return build


def revoke(
    auth: Callable[[Ctx], bytes | None], body: Callable[[Ctx], bytes], content_type: bytes = FORM.encode()
):
    def build(ctx: Ctx) -> Req:
        req = token(auth, body, content_type)(ctx)
        return Req(req.method, "/oauth/revoke", req.headers, req.body)

    return build


CC = b"grant_type=client_credentials"
# The Client Credentials client's valid request, broken in one place per probe.
TOKEN_PROBES: dict[str, tuple[Callable[[Ctx], Req], int, str]] = {
    "basic not base64": (token(lambda c: b"Basic !!!not-base64!!!", lambda c: CC), 401, "invalid_client"),
    "basic non-ascii": (token(lambda c: b"Basic \xe9t\xe9", lambda c: CC), 401, "invalid_client"),
    "basic invalid utf-8": (token(lambda c: basic(b"\xff\xfe:\xff"), lambda c: CC), 401, "invalid_client"),
    "basic no colon": (token(lambda c: basic(c.cc.client_id.encode()), lambda c: CC), 401, "invalid_client"),
    "basic empty": (token(lambda c: b"Basic", lambda c: CC), 401, "invalid_client"),
    "basic nul": (
        token(lambda c: basic(f"{c.cc.client_id}\x00:{c.cc.client_secret}".encode()), lambda c: CC),
        401,
        "invalid_client",
    ),
    "basic percent non-utf-8": (
        token(lambda c: basic(f"{c.cc.client_id}%FF:{c.cc.client_secret}".encode()), lambda c: CC),
        401,
        "invalid_client",
    ),
    "basic quote and backslash": (
        token(lambda c: basic(b'"pvc_\\":x'), lambda c: CC),
        401,
        "invalid_client",
    ),
    "basic very long": (token(lambda c: basic(b"a" * 20000 + b":b"), lambda c: CC), 401, "invalid_client"),
    "bearer scheme": (
        token(lambda c: b"Bearer " + c.cc.client_secret.encode(), lambda c: CC),
        401,
        "invalid_client",
    ),
    "basic and body secret": (
        token(lambda c: c.cc_basic(), lambda c: CC + f"&client_secret={c.cc.client_secret}".encode()),
        400,
        "invalid_request",
    ),
    "body client_id differs from basic": (
        token(lambda c: c.cc_basic(), lambda c: CC + f"&client_id={c.code.client_id}".encode()),
        400,
        "invalid_request",
    ),
    "nul in grant_type": (
        token(lambda c: c.cc_basic(), lambda c: b"grant_type=client%00credentials"),
        400,
        "invalid_request",
    ),
    "repeated grant_type": (token(lambda c: c.cc_basic(), lambda c: CC + b"&" + CC), 400, "invalid_request"),
    "quote in grant_type": (
        token(lambda c: c.cc_basic(), lambda c: b"grant_type=%22%5C"),
        400,
        "invalid_request",
    ),
    "non-ascii grant_type": (
        token(lambda c: c.cc_basic(), lambda c: b"grant_type=%C3%A9"),
        400,
        "invalid_request",
    ),
    "non-utf-8 value": (
        token(lambda c: c.cc_basic(), lambda c: CC + b"&scope=%FF%FE"),
        400,
        "invalid_request",
    ),
    "non-utf-8 name": (token(lambda c: c.cc_basic(), lambda c: CC + b"&%FF=1"), 400, "invalid_request"),
    "raw non-utf-8 byte": (
        token(lambda c: c.cc_basic(), lambda c: CC + b"&scope=\xff"),
        400,
        "invalid_request",
    ),
    "very long scope": (
        token(lambda c: c.cc_basic(), lambda c: CC + b"&scope=" + b"s" * 5000),
        400,
        "invalid_request",
    ),
    "body too large": (
        token(lambda c: c.cc_basic(), lambda c: CC + b"&x=" + b"y" * 40000),
        400,
        "invalid_request",
    ),
    "no content type": (token(lambda c: c.cc_basic(), lambda c: CC, b""), 400, "invalid_request"),
    "json body": (
        token(lambda c: c.cc_basic(), lambda c: b'{"grant_type": "client_credentials"}', b"application/json"),
        400,
        "invalid_request",
    ),
    "multipart body": (
        token(
            lambda c: c.cc_basic(),
            lambda c: (
                b'--b\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n'
                b"client_credentials\r\n--b--\r\n"
            ),
            b"multipart/form-data; boundary=b",
        ),
        400,
        "invalid_request",
    ),
    "post secret nul": (
        token(lambda c: None, lambda c: CC + f"&client_id={c.cc.client_id}&client_secret=%00".encode()),
        400,
        "invalid_request",
    ),
    "post client_id quote": (
        token(lambda c: None, lambda c: CC + b"&client_id=%22%5C&client_secret=x"),
        401,
        "invalid_client",
    ),
    "refresh token nul": (
        token(lambda c: c.code_basic(), lambda c: b"grant_type=refresh_token&refresh_token=pvr_%00"),
        400,
        "invalid_request",
    ),
    "repeated refresh token": (
        token(
            lambda c: c.code_basic(),
            lambda c: (
                f"grant_type=refresh_token&refresh_token={c.grants.refresh_token}&refresh_token=x".encode()
            ),
        ),
        400,
        "invalid_request",
    ),
    "refresh scope quote": (
        token(
            lambda c: c.code_basic(),
            lambda c: f"grant_type=refresh_token&refresh_token={c.grants.refresh_token}&scope=%22".encode(),
        ),
        400,
        "invalid_request",
    ),
    "code repeated": (
        token(
            lambda c: c.code_basic(),
            lambda c: f"grant_type=authorization_code&code={c.grants.code}&code={c.grants.code}".encode(),
        ),
        400,
        "invalid_request",
    ),
    "code with unregistered quoted redirect_uri": (
        token(
            lambda c: c.code_basic(),
            lambda c: (
                f"grant_type=authorization_code&code={c.grants.code}&redirect_uri=https://x/%22%5C".encode()
            ),
        ),
        400,
        "invalid_request",
    ),
    "code verifier out of syntax": (
        token(
            lambda c: c.code_basic(),
            lambda c: f"grant_type=authorization_code&code={c.grants.code}&code_verifier=%20%22".encode(),
        ),
        400,
        "invalid_request",
    ),
    "code nul": (
        token(lambda c: c.code_basic(), lambda c: b"grant_type=authorization_code&code=%00"),
        400,
        "invalid_request",
    ),
    "revoke token nul": (
        revoke(lambda c: c.code_basic(), lambda c: b"token=pva_%00"),
        400,
        "invalid_request",
    ),
    "revoke repeated token": (
        revoke(lambda c: c.code_basic(), lambda c: f"token={c.grants.access_token}&token=x".encode()),
        400,
        "invalid_request",
    ),
    "revoke hint quote": (
        revoke(
            lambda c: c.code_basic(), lambda c: f"token={c.grants.access_token}&token_type_hint=%22".encode()
        ),
        400,
        "invalid_request",
    ),
    "revoke unknown hint": (
        revoke(
            lambda c: c.code_basic(),
            lambda c: f"token={c.grants.access_token}&token_type_hint=id_token".encode(),
        ),
        400,
        "unsupported_token_type",
    ),
    "revoke basic invalid utf-8": (
        revoke(lambda c: basic(b"\xc3(:x"), lambda c: f"token={c.grants.refresh_token}".encode()),
        401,
        "invalid_client",
    ),
    "revoke basic and body secret": (
        revoke(
            lambda c: basic_pair(c.code.client_id, "pvcs_wrong"),
            lambda c: f"token={c.grants.refresh_token}&client_secret={c.code.client_secret}".encode(),
        ),
        400,
        "invalid_request",
    ),
    "revoke no content type": (
        revoke(lambda c: c.code_basic(), lambda c: f"token={c.grants.refresh_token}".encode(), b""),
        400,
        "invalid_request",
    ),
    "revoke body too large": (
        revoke(
            lambda c: c.code_basic(), lambda c: f"token={c.grants.refresh_token}&x=".encode() + b"y" * 40000
        ),
        400,
        "invalid_request",
    ),
    "token nul in query": (
        lambda c: Req(
            "POST",
            "/oauth/token?x=%00",
            [(b"content-type", FORM.encode()), (b"authorization", c.cc_basic())],
            CC,
        ),
        400,
        "invalid_request",
    ),
    "token get": (
        lambda c: Req("GET", "/oauth/token?" + CC.decode(), [(b"authorization", c.cc_basic())]),
        405,
        "invalid_request",
    ),
    "revoke get": (lambda c: Req("GET", "/oauth/revoke", []), 405, "invalid_request"),
}


@pytest.fixture(scope="module")
async def ctx(db: Database) -> Ctx:
    """Shared by the module's probes (each compares the rows before and after itself)."""
    code = await make_oauth_tenant(db)
    cc = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    return Ctx(code, cc, await seed_grants(db, code))


@pytest.fixture(scope="module")
async def admin_browser(app: object, ctx: Ctx) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The code client's workspace admin, signed in once (passwords are slow to check on purpose), and
    a CSRF token for the consent form."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as browser:
        await sign_in(browser, ctx.code.admin_email)
        page = await browser.get(
            f"{ctx.code.authorization_path}?response_type=code&client_id={ctx.code.client_id}"
        )
        assert page.status_code == 200 and "Allow access" in page.text
        yield browser, csrf_token(page.text)


async def _rows(db: Database, ctx: Ctx) -> set[tuple[object, ...]]:
    return await grant_rows(db, ctx.code.id) | await grant_rows(db, ctx.cc.id)


def assert_oauth_error(r: httpx.Response, errors: set[str]) -> None:
    """An RFC 6749 §5.2 error response."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert body["error"] in errors, body
    assert set(body.get("error_description", "")) <= DESCRIPTION_CHARS, body
    assert r.headers["cache-control"] == "no-store"
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith("Basic "), r.headers


async def send(client: httpx.AsyncClient, req: Req) -> httpx.Response:
    return await client.request(req.method, req.path, headers=req.headers, content=req.body)


@pytest.mark.parametrize("name", list(TOKEN_PROBES))
async def test_token_and_revoke_answer_hostile_input_in_oauth_terms(
    db: Database, client: httpx.AsyncClient, ctx: Ctx, name: str
) -> None:
    build, status, error = TOKEN_PROBES[name]
    req = build(ctx)
    before = await _rows(db, ctx)
    r = await send(client, req)
    assert r.status_code == status, (r.status_code, r.text)
    assert_oauth_error(r, REVOKE_ERRORS if req.path.startswith("/oauth/revoke") else TOKEN_ERRORS)
    assert r.json()["error"] == error
    assert await _rows(db, ctx) == before
    # The connection stays usable: the next, valid request on the same client succeeds.
    ok = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(ctx.cc.client_id, ctx.cc.client_secret),
    )
    assert ok.status_code == 200, ok.text


def q(value: str) -> str:
    return quote(value, safe="")


# Query strings for the authorization endpoint, each the Authorization Code client's valid request broken
# in one place; "page" means the error must be shown (no trustworthy redirect URI), "redirect" that it
# goes to the registered redirect URI.
AUTHORIZE_PROBES: dict[str, tuple[Callable[[OAuthTenant], str], str]] = {
    "unregistered redirect_uri with quote": (
        lambda t: f"response_type=code&client_id={t.client_id}&redirect_uri=https://evil.example/%22",
        "page",
    ),
    "unregistered redirect_uri with backslash": (
        lambda t: f"response_type=code&client_id={t.client_id}&redirect_uri=https://evil.example/%5C",
        "page",
    ),
    "unregistered redirect_uri": (
        lambda t: f"response_type=code&client_id={t.client_id}&redirect_uri={q('https://evil.example/cb')}",
        "page",
    ),
    "repeated redirect_uri": (
        lambda t: (
            f"response_type=code&client_id={t.client_id}&redirect_uri={q(OKTA_CALLBACK)}&redirect_uri={q(OKTA_CALLBACK)}"
        ),
        "page",
    ),
    "repeated client_id": (
        lambda t: f"response_type=code&client_id={t.client_id}&client_id={t.client_id}",
        "page",
    ),
    "client_id with quote": (lambda t: "response_type=code&client_id=%22%5C", "page"),
    "client_id nul": (lambda t: f"response_type=code&client_id={t.client_id}%00", "page"),
    "client_id non-utf-8": (lambda t: f"response_type=code&client_id={t.client_id}%FF", "page"),
    "non-utf-8 anywhere": (lambda t: f"response_type=code&client_id={t.client_id}&x=%C3%28", "page"),
    "very long client_id": (lambda t: f"response_type=code&client_id={'a' * 5000}", "page"),
    "response_type with quote": (lambda t: f"response_type=%22&client_id={t.client_id}&state=s", "redirect"),
    "response_type with backslash": (lambda t: f"response_type=code%5C&client_id={t.client_id}", "redirect"),
    "response_type non-ascii": (lambda t: f"response_type=c%C3%B6de&client_id={t.client_id}", "redirect"),
    "unsupported response_type": (lambda t: f"response_type=token&client_id={t.client_id}", "redirect"),
    "repeated response_type": (
        lambda t: f"response_type=code&response_type=code&client_id={t.client_id}",
        "redirect",
    ),
    "repeated state": (lambda t: f"response_type=code&client_id={t.client_id}&state=a&state=b", "redirect"),
    "state non-ascii": (lambda t: f"response_type=code&client_id={t.client_id}&state=%C3%A9", "redirect"),
    "state very long": (
        lambda t: f"response_type=code&client_id={t.client_id}&state={'s' * 5000}",
        "redirect",
    ),
    "scope with quote": (
        lambda t: f"response_type=code&client_id={t.client_id}&scope=%22scim%22&state=s",
        "redirect",
    ),
    "code_challenge_method quote": (
        lambda t: (
            f"response_type=code&client_id={t.client_id}&code_challenge={'a' * 43}&code_challenge_method=%22"
        ),
        "redirect",
    ),
    "code_challenge out of syntax": (
        lambda t: (
            f"response_type=code&client_id={t.client_id}&code_challenge=%22%5C&code_challenge_method=S256"
        ),
        "redirect",
    ),
}


def assert_authorization_error(r: httpx.Response, tenant: OAuthTenant, expected: str) -> None:
    assert r.status_code < 500, r.text
    if expected == "page":
        assert r.status_code == 400, (r.status_code, r.headers)
        assert r.headers["content-type"].startswith(("text/html", "text/plain")), r.headers
        return
    assert r.status_code == 302, (r.status_code, r.text)
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" in tenant.redirect_uris
    params = parse_qs(location.query)
    assert params["error"][0] in AUTHORIZE_ERRORS and "code" not in params, params
    assert set(params.get("error_description", [""])[0]) <= DESCRIPTION_CHARS


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("name", list(AUTHORIZE_PROBES))
async def test_authorization_endpoint_answers_hostile_input_with_page_or_error_redirect(
    db: Database, admin_browser: tuple[httpx.AsyncClient, str], ctx: Ctx, name: str, method: str
) -> None:
    build, expected = AUTHORIZE_PROBES[name]
    browser, csrf = admin_browser
    tenant = ctx.code
    before = await _rows(db, ctx)
    url = f"{tenant.authorization_path}?{build(tenant)}"
    if method == "GET":
        r = await browser.get(url)
    else:
        r = await browser.post(url, data={"csrf_token": csrf, "decision": "allow"})
    assert_authorization_error(r, tenant, expected)
    assert await _rows(db, ctx) == before


async def test_error_redirect_echoes_a_well_formed_state_only(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    await sign_in(browser, tenant.admin_email)
    r = await browser.get(
        f"{tenant.authorization_path}?response_type=%22&client_id={tenant.client_id}&state=s1"
    )
    assert parse_qs(urlsplit(r.headers["location"]).query)["state"] == ["s1"]
    r = await browser.get(
        f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}&state=%C3%A9"
    )
    assert "state" not in parse_qs(urlsplit(r.headers["location"]).query)


@pytest.mark.parametrize(
    "headers",
    [{"authorization": "Basic %%%"}, {"content-type": "text/plain"}, {"x-forwarded-host": '"\\'}],
)
async def test_metadata_ignores_hostile_requests(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await client.get("/.well-known/oauth-authorization-server?x=%FF&issuer=%22", headers=headers)
    assert r.status_code == 200 and r.json()["token_endpoint"].endswith("/oauth/token")


header_values = st.binary(max_size=300).filter(lambda b: not set(b) & {0x0A, 0x0D})
basic_values = st.binary(max_size=300).map(lambda b: b"Basic " + base64.b64encode(b))
form_names = st.sampled_from(
    [
        "grant_type",
        "client_id",
        "client_secret",
        "code",
        "refresh_token",
        "scope",
        "redirect_uri",
        "token",
        "token_type_hint",
        "code_verifier",
        "x",
    ]
)
form_values = st.one_of(
    st.text(max_size=80), st.sampled_from(["client_credentials", "refresh_token", "authorization_code"])
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/oauth/token", "/oauth/revoke"]),
    authorization=st.one_of(st.none(), header_values, basic_values),
    content_type=st.one_of(st.just(FORM.encode()), header_values),
    pairs=st.lists(st.tuples(form_names, form_values), max_size=6),
    raw_tail=st.binary(max_size=40),
)
async def test_random_token_and_revoke_requests_get_oauth_errors(
    db: Database,
    client: httpx.AsyncClient,
    ctx: Ctx,
    path: str,
    authorization: bytes | None,
    content_type: bytes,
    pairs: list[tuple[str, str]],
    raw_tail: bytes,
) -> None:
    body = "&".join(f"{q(k)}={q(v)}" for k, v in pairs).encode() + raw_tail
    headers = [(b"content-type", content_type)]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    before = await _rows(db, ctx)
    r = await client.request("POST", path, headers=headers, content=body)
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        assert_oauth_error(r, REVOKE_ERRORS if path == "/oauth/revoke" else TOKEN_ERRORS)
        assert await _rows(db, ctx) == before
