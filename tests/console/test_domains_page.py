"""Workspace settings > Domains through its forms (no JavaScript): add a domain, show its TXT record,
verify it against a DNS server on 127.0.0.1 (not found yet / wrong record / verified / lookup failed),
remove it, and the "allow other domains" setting."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.domain import domains as domain_service
from provisio.domain import scim_settings as settings_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from tests.console.pages import domains_path, new_browser, signed_in_tenant, submit, workspace
from tests.domain.dns_server import TxtServer, txt_server
from tests.domain.helpers import unique_domain
from tests.oauth.helpers import OAuthTenant, csrf_token, make_admin, sign_in


@pytest.fixture(scope="module")
def dns() -> Iterator[TxtServer]:
    with txt_server() as server:
        yield server


@contextmanager
def app_settings(app: object, settings: Settings, **changes: object) -> Iterator[None]:
    """Run the app with other settings (starlette's ``State`` does not suit ``monkeypatch``)."""
    state = app.state  # type: ignore[attr-defined]
    before = state.settings
    state.settings = settings.model_copy(update=changes)
    try:
        yield
    finally:
        state.settings = before


@pytest.fixture
def resolver(app: object, settings: Settings, dns: TxtServer) -> Iterator[TxtServer]:
    """The app under test asks the local DNS server."""
    with app_settings(app, settings, dns_nameservers="127.0.0.1", dns_port=dns.port, dns_timeout_seconds=2.0):
        yield dns


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser(app) as c:
        yield c


@pytest.fixture
async def tenant(db: Database, browser: httpx.AsyncClient) -> OAuthTenant:
    return await signed_in_tenant(db, browser)


def txt_value(html: str, domain: str) -> str:
    match = re.search(
        rf'<label for="(txt-\d+)">TXT record value for {re.escape(domain)}</label>.*?value="([^"]+)"',
        html,
        re.S,
    )
    assert match, f"no TXT record shown for {domain}"
    return match.group(2)


def notice(html: str) -> str:
    match = re.search(r'role="status" id="verification-result">(.*?)</div>', html, re.S)
    assert match, "no notice"
    return " ".join(match.group(1).split())


async def test_add_verify_and_remove(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, resolver: TxtServer
) -> None:
    page = await browser.get(domains_path(tenant))
    assert page.status_code == 200 and 'aria-current="page">Domains' in page.text
    assert '<label for="domain">Domain</label>' in page.text
    name = unique_domain("corp")

    r = await submit(browser, domains_path(tenant), "add", domain=f"  Ada@{name.upper()} ")
    assert r.status_code == 303
    page = await browser.get(r.headers["location"])
    assert f"{name} added. Publish its TXT record" in notice(page.text)
    record = txt_value(page.text, name)
    async with db.reading() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        entry = await domain_service.get_domain(session, ws, name)
    assert record == domain_service.txt_record(entry) and record.startswith("provisio-verification=")
    assert f"Verify {name}" in page.text and "Not verified" in page.text

    # Nothing published yet.
    r = await submit(browser, domains_path(tenant), "verify", domain=name)
    assert r.status_code == 303 and "notice=verify-not-found" in r.headers["location"]
    page = await browser.get(r.headers["location"])
    assert "is not verified yet: no provisio-verification TXT record was found" in notice(page.text)
    assert "Last checked" in page.text and "No TXT record" in page.text
    assert name in resolver.queries

    # Someone else's code (or a stale one): found, but wrong.
    resolver.set_txt(name, "v=spf1 -all", "provisio-verification=0123456789abcdef")
    r = await submit(browser, domains_path(tenant), "verify", domain=name)
    page = await browser.get(r.headers["location"])
    assert 'class="alert alert-error"' in page.text
    assert "a provisio-verification TXT record was found on it, but its code is not this workspace" in notice(
        page.text
    )

    # The right record.
    resolver.set_txt(name, "v=spf1 -all", record)
    r = await submit(browser, domains_path(tenant), "verify", domain=name)
    page = await browser.get(r.headers["location"])
    assert f"{name} is verified." in notice(page.text)
    assert f"Verify {name}" not in page.text and "Verified on" in page.text
    async with db.reading() as session:
        verified = await domain_service.verified_domains(session, tenant.id)
    assert name in verified

    # Remove asks first: the page's button opens a confirmation (a GET, which changes nothing).
    page = await browser.get(domains_path(tenant))
    assert f'<form method="get" action="{domains_path(tenant)}/remove">' in page.text
    confirm = await browser.get(f"{domains_path(tenant)}/remove", params={"domain": name.upper()})
    assert confirm.status_code == 200 and f"Remove {name}?" in confirm.text
    assert "can no longer provision members with an e-mail address at" in confirm.text
    assert f'<form method="post" action="{domains_path(tenant)}/remove"' in confirm.text
    assert f'href="{domains_path(tenant)}" class="button button-quiet">Cancel' in confirm.text
    async with db.reading() as session:
        assert name in await domain_service.verified_domains(session, tenant.id)
    r = await browser.post(
        f"{domains_path(tenant)}/remove", data={"csrf_token": csrf_token(confirm.text), "domain": name}
    )
    assert r.status_code == 303
    page = await browser.get(r.headers["location"])
    assert f"{name} removed." in notice(page.text) and f"Verify {name}" not in page.text
    # A domain that is not the workspace's has no confirmation page, and the notice names only domains.
    missing = await browser.get(f"{domains_path(tenant)}/remove", params={"domain": name})
    assert missing.status_code == 404 and "is not a domain of workspace" in missing.text
    spoof = await browser.get(domains_path(tenant), params={"notice": "removed", "domain": "<b>x</b> y"})
    assert "removed." not in spoof.text


async def test_a_failed_lookup_is_reported(
    app: object, settings: Settings, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    name = unique_domain("down")
    await submit(browser, domains_path(tenant), "add", domain=name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a port nobody answers on
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
        with app_settings(app, settings, dns_nameservers="127.0.0.1", dns_port=port, dns_timeout_seconds=0.5):
            r = await submit(browser, domains_path(tenant), "verify", domain=name)
    page = await browser.get(r.headers["location"])
    assert "could not be checked because the DNS lookup failed" in notice(page.text)
    assert "could not be checked: the DNS lookup timed out" in page.text


@pytest.mark.parametrize(
    ("domain", "status", "message"),
    [
        ("localhost", 400, "is not a domain name"),
        ("https://example.com/x", 400, "is not a domain name"),
        ("10.0.0.1", 400, "is an IP address"),
        ("", 400, "is not a domain name"),
    ],
)
async def test_add_validation(
    browser: httpx.AsyncClient, tenant: OAuthTenant, domain: str, status: int, message: str
) -> None:
    r = await submit(browser, domains_path(tenant), "add", domain=domain)
    assert r.status_code == status and message in r.text
    assert 'id="domain" name="domain"' in r.text and 'aria-invalid="true"' in r.text


async def test_a_domain_belongs_to_one_workspace(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant, resolver: TxtServer
) -> None:
    name = unique_domain("dup")
    assert (await submit(browser, domains_path(tenant), "add", domain=name)).status_code == 303
    r = await submit(browser, domains_path(tenant), "add", domain=name)
    assert r.status_code == 409 and "already a domain of workspace" in r.text
    async with db.writing() as session:
        other = await workspace_service.create_workspace(session, "Other")
        await domain_service.add_domain(session, other, name, operator_verified=True)
        ws = await workspace_service.require_workspace(session, tenant.key)
        resolver.set_txt(name, domain_service.txt_record(await domain_service.get_domain(session, ws, name)))
    r = await submit(browser, domains_path(tenant), "verify", domain=name)
    assert r.status_code == 409 and "already verified by another workspace" in r.text
    taken = unique_domain("taken")
    async with db.writing() as session:
        await domain_service.add_domain(session, other, taken, operator_verified=True)
    r = await submit(browser, domains_path(tenant), "add", domain=taken)
    assert r.status_code == 409 and "already verified by another workspace" in r.text


async def test_last_verified_domain_stays_while_scim_is_on(
    db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        await settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
        own = (await domain_service.verified_domains(session, ws.id))[0]
    page = await browser.get(domains_path(tenant))
    assert "Verified by the operator" in page.text
    r = await submit(browser, domains_path(tenant), "remove", domain=own)
    assert r.status_code == 400 and "only verified domain" in r.text
    async with db.reading() as session:
        assert await domain_service.verified_domains(session, tenant.id) == [own]


async def test_unknown_domain(browser: httpx.AsyncClient, tenant: OAuthTenant, resolver: TxtServer) -> None:
    before = len(resolver.queries)
    r = await submit(browser, domains_path(tenant), "verify", domain="not-ours.example")
    assert r.status_code == 404 and "is not a domain of workspace" in r.text
    assert len(resolver.queries) == before  # no DNS lookup for a domain the workspace does not have
    r = await submit(browser, domains_path(tenant), "remove", domain="not-ours.example")
    assert r.status_code == 404
    # A notice naming a domain that is not the workspace's is not shown.
    page = await browser.get(
        domains_path(tenant), params={"notice": "verify-verified", "domain": "evil.example"}
    )
    assert "evil.example" not in page.text


async def test_allow_other_domains(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    page = await browser.get(domains_path(tenant))
    assert '<label for="allow_other_domains">Allow other domains</label>' in page.text
    assert "Off (recommended)" in page.text
    r = await submit(browser, domains_path(tenant), "allow-other-domains", allow_other_domains="on")
    assert r.status_code == 303 and "notice=allow-on" in r.headers["location"]
    assert (await workspace(db, tenant)).allow_other_domains
    page = await browser.get(r.headers["location"])
    assert "any domain are now accepted" in page.text
    assert re.search(r'name="allow_other_domains"\s+checked', page.text)
    r = await submit(browser, domains_path(tenant), "allow-other-domains")
    assert r.status_code == 303 and not (await workspace(db, tenant)).allow_other_domains


async def test_only_admins_of_the_workspace(db: Database, app: object, tenant: OAuthTenant) -> None:
    name = unique_domain("intruder")
    async with new_browser(app) as stranger:
        r = await stranger.get(domains_path(tenant))
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
        await sign_in(stranger, await make_admin(db))
        assert (await stranger.get(domains_path(tenant))).status_code == 404
        login = await stranger.get("/console/login", follow_redirects=True)
        for action in ("add", "verify", "remove", "allow-other-domains"):
            r = await stranger.post(
                f"{domains_path(tenant)}/{action}",
                data={"csrf_token": csrf_token(login.text), "domain": name, "allow_other_domains": "on"},
            )
            assert r.status_code == 404
    async with db.reading() as session:
        assert name not in [d.domain for d in await domain_service.list_domains(session, tenant.id)]
    assert not (await workspace(db, tenant)).allow_other_domains


async def test_forms_need_csrf(db: Database, browser: httpx.AsyncClient, tenant: OAuthTenant) -> None:
    name = unique_domain("csrf")
    for action in ("add", "verify", "remove", "allow-other-domains"):
        data = {"domain": name, "allow_other_domains": "on"}
        r = await browser.post(f"{domains_path(tenant)}/{action}", data=data)
        assert r.status_code == 403 and "This form has expired" in r.text
        r = await browser.post(f"{domains_path(tenant)}/{action}", data={"csrf_token": "forged", **data})
        assert r.status_code == 403
    async with db.reading() as session:
        assert name not in [d.domain for d in await domain_service.list_domains(session, tenant.id)]
    assert not (await workspace(db, tenant)).allow_other_domains
