"""Verified domains: DNS TXT verification against a local DNS server, one owner per domain, SCIM needs a
verified domain, and members outside the verified domains are refused unless other domains are allowed."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.domain import domains as domain_service
from provisio.domain import scim_settings as settings_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import CLI_ACTOR
from tests.conftest import make_tenant
from tests.domain.dns_server import TxtServer, txt_server
from tests.domain.helpers import entra_email, okta_user, scim_error, unique_domain


@pytest.fixture(scope="module")
def dns() -> Iterator[TxtServer]:
    with txt_server() as server:
        yield server


def resolver_settings(port: int, timeout: float = 2.0) -> Settings:
    return Settings(dns_nameservers="127.0.0.1", dns_port=port, dns_timeout_seconds=timeout)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("ada@Example.com", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        (" sub.example.co.uk ", "sub.example.co.uk"),
    ],
)
def test_normalise_domain(raw: str, expected: str) -> None:
    assert domain_service.normalise_domain(raw) == expected


@pytest.mark.parametrize(
    "raw", ["localhost", "", "exa mple.com", "-bad.com", "https://x/y", "10.0.0.1", "a..b"]
)
def test_normalise_domain_refuses(raw: str) -> None:
    with pytest.raises(DomainError) as err:
        domain_service.normalise_domain(raw)
    assert err.value.kind is Kind.INVALID


async def test_verify_with_dns_txt_record(db: Database, dns: TxtServer) -> None:
    settings = resolver_settings(dns.port)
    name = unique_domain()
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, "Verify Co")
        entry = await domain_service.add_domain(session, ws, name.upper())
        assert entry.domain == name and entry.verified_at is None
        record = domain_service.txt_record(entry)
    assert record.startswith("provisio-verification=")

    # Nothing published yet: not verified, and the reason says what to publish.
    check = await domain_service.check_txt(settings, name)
    assert check.values == [] and check.error is None
    async with db.writing() as session:
        entry = await domain_service.record_check(session, ws, name, check)
        assert entry.verified_at is None and record in (entry.last_error or "")

    # A wrong code next to other TXT records is not enough; the right one verifies.
    dns.set_txt(name, "v=spf1 -all", "provisio-verification=wrong")
    async with db.writing() as session:
        entry = await domain_service.record_check(
            session, ws, name, await domain_service.check_txt(settings, name)
        )
        assert entry.verified_at is None
    dns.set_txt(name, "v=spf1 -all", record)
    async with db.writing() as session:
        entry = await domain_service.record_check(
            session, ws, name, await domain_service.check_txt(settings, name)
        )
        assert entry.verified_at is not None and entry.verified_by == "dns" and entry.last_error is None
        assert await domain_service.verified_domains(session, ws.id) == [name]
    assert name in dns.queries


async def test_unreachable_resolver_is_reported_not_verified(db: Database) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a port nobody answers on
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
        check = await domain_service.check_txt(resolver_settings(port, timeout=0.5), "example.com")
    assert check.values == [] and check.error


async def test_a_domain_has_one_verified_owner(db: Database, dns: TxtServer) -> None:
    settings = resolver_settings(dns.port)
    name = unique_domain()
    async with db.writing() as session:
        first = await workspace_service.create_workspace(session, "First")
        second = await workspace_service.create_workspace(session, "Second")
        # Unverified claims do not block each other (nobody can squat on a domain)...
        a = await domain_service.add_domain(session, first, name)
        b = await domain_service.add_domain(session, second, name)
        with pytest.raises(DomainError) as dup:
            await domain_service.add_domain(session, first, name)
        assert dup.value.kind is Kind.CONFLICT
    # Both codes are published (the domain changed hands, say): the first to verify keeps it.
    dns.set_txt(name, domain_service.txt_record(a), domain_service.txt_record(b))
    check = await domain_service.check_txt(settings, name)
    async with db.writing() as session:
        assert (await domain_service.record_check(session, first, name, check)).verified_at is not None
    # ...but once one workspace verified it, the other can neither verify nor add it.
    async with db.writing() as session:
        with pytest.raises(DomainError) as taken:
            await domain_service.record_check(session, second, name, check)
        assert taken.value.kind is Kind.CONFLICT and "another workspace" in taken.value.detail
    async with db.writing() as session:
        third = await workspace_service.create_workspace(session, "Third")
        with pytest.raises(DomainError) as taken:
            await domain_service.add_domain(session, third, name, operator_verified=True)
        assert taken.value.kind is Kind.CONFLICT


async def test_credentials_need_a_verified_domain(db: Database) -> None:
    """Every way to issue credentials goes through the rule that turns SCIM on."""
    from provisio.domain import scim_credentials as credential_service
    from provisio.domain.scim_methods import ScimMethod

    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, "Creds")
        assert not ws.scim_enabled
        for issue in (
            credential_service.generate_credentials(session, ws),
            credential_service.issue_bearer_token(session, ws, "x"),
        ):
            with pytest.raises(DomainError) as err:
                await issue
            assert (
                "needs a verified domain" in err.value.detail and f"domain add {ws.key}" in err.value.detail
            )
        await domain_service.add_domain(session, ws, unique_domain(), operator_verified=True)
        # Credentials may be prepared while SCIM is off; a legacy token only once it would work.
        assert (await credential_service.generate_credentials(session, ws)).token
        with pytest.raises(DomainError) as off:
            await credential_service.issue_bearer_token(session, ws, "x")
        assert "off" in off.value.detail and f"scim configure {ws.key}" in off.value.detail
        await settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
        assert (await credential_service.issue_bearer_token(session, ws, "x")).token
        await settings_service.set_method(session, ws, ScimMethod.CLIENT_CREDENTIALS)
        with pytest.raises(DomainError) as method:
            await credential_service.issue_bearer_token(session, ws, "x")
        assert "does not accept bearer tokens" in method.value.detail


async def test_scim_needs_a_verified_domain(db: Database) -> None:
    name = unique_domain()
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, "Toggle")
        assert not ws.scim_enabled  # a new workspace starts with SCIM off
        with pytest.raises(DomainError) as err:
            await settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
        assert "verified domain" in err.value.detail
        await domain_service.add_domain(session, ws, name)  # claimed, not verified: still refused
        with pytest.raises(DomainError):
            await settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, ws.key)
        await domain_service.remove_domain(session, ws, name)
        await domain_service.add_domain(session, ws, name, operator_verified=True)
        await settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
        assert ws.scim_enabled
        # The only verified domain cannot go while SCIM is on; with SCIM off it can.
        with pytest.raises(DomainError) as last:
            await domain_service.remove_domain(session, ws, name)
        assert "only verified domain" in last.value.detail
        await settings_service.set_enabled(session, ws, False, by=CLI_ACTOR)
        await domain_service.remove_domain(session, ws, name)
        assert await domain_service.list_domains(session, ws.id) == []


async def test_scim_refuses_emails_outside_verified_domains(client: httpx.AsyncClient, db: Database) -> None:
    own = unique_domain("acme")
    tenant = await make_tenant(db, domains=(own,), allow_other_domains=False)
    url = f"{tenant.base}/Users"
    h = tenant.headers

    r = await client.post(url, json=okta_user(f"ada@{own.upper()}"), headers=h)
    assert r.status_code == 201, r.text
    ada = r.json()["id"]

    # POST outside the verified domains: 400 invalidValue naming the domain; nothing is created.
    detail = scim_error(
        await client.post(url, json=okta_user("bob@gmail.com"), headers=h), 400, "invalidValue"
    )
    assert "gmail.com" in detail and own in detail and "Allow other domains" in detail
    found = await client.get(url, params={"filter": 'userName eq "bob@gmail.com"'}, headers=h)
    assert found.json()["totalResults"] == 0

    # Okta's PUT and Entra's PATCH cannot move a member's e-mail outside them either.
    r = await client.put(f"{url}/{ada}", json=okta_user("ada@gmail.com"), headers=h)
    assert "gmail.com" in scim_error(r, 400, "invalidValue")
    r = await client.patch(f"{url}/{ada}", json=entra_email("ada@contoso.com"), headers=h)
    assert "contoso.com" in scim_error(r, 400, "invalidValue")
    r = await client.get(f"{url}/{ada}", headers=h)
    assert r.json()["emails"][0]["value"] == f"ada@{own.upper()}"

    # A user without any e-mail cannot be tied to a verified domain.
    no_mail = {"schemas": okta_user("x")["schemas"], "userName": "carol"}
    assert "no e-mail" in scim_error(await client.post(url, json=no_mail, headers=h), 400, "invalidValue")

    # With "allow other domains" on, they are accepted.
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        ws.allow_other_domains = True
    assert (await client.post(url, json=okta_user("bob@gmail.com"), headers=h)).status_code == 201
    assert (
        await client.patch(f"{url}/{ada}", json=entra_email("ada@contoso.com"), headers=h)
    ).status_code == 200


async def test_no_verified_domain_admits_nobody(client: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_tenant(db, domains=(), allow_other_domains=True)
    # SCIM cannot be on without a verified domain, so the identity provider is refused outright...
    r = await client.post(
        f"{tenant.base}/Users", json=okta_user(f"ada@{unique_domain()}"), headers=tenant.headers
    )
    assert r.status_code == 401 and "turned off" in r.json()["detail"]
    # ...and the member rule behind it (the console's *Add member* too) admits nobody.
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        with pytest.raises(DomainError) as err:
            await domain_service.check_member_email(session, ws, f"ada@{unique_domain()}")
    assert "no verified domain" in err.value.detail


async def test_rules_apply_to_oauth_credentials_too(client: httpx.AsyncClient, db: Database) -> None:
    from provisio.domain.scim_methods import ScimMethod
    from tests.oauth.helpers import make_oauth_tenant

    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        ws.allow_other_domains = False
    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
    )
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await client.post(f"{tenant.scim_base}/Users", json=okta_user("eve@gmail.com"), headers=headers)
    assert "gmail.com" in scim_error(r, 400, "invalidValue")
