"""Where webhooks may go: https only, public addresses only (IPv4, IPv6, IPv4 inside IPv6, names that
resolve to loopback), checked at registration and again against the address a delivery connects to;
TLS spoken with the endpoint's name; redirects never followed. The setting lifts the rule for tests."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import WebhookEndpoint
from provisio.domain import webhooks as rules
from provisio.notify.webhooks import GuardedBackend, WebhookDeliverer
from tests.api.test_auth_and_problems import problem
from tests.conftest import make_tenant
from tests.notify.conftest import eventually, running
from tests.webhooks.conftest import ENDPOINTS, attempts_of, emit, register, webhook_settings, worker
from tests.webhooks.receiver import Receiver, tls_pair

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "100.64.0.1": "not public",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "240.0.0.1": "private",
    "255.255.255.255": "private",
    "192.0.2.1": "private",
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1": "private",  # NAT64 of 10.0.0.1
}
ALLOWED = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14", "64:ff9b::808:808"]


def test_addresses_the_policy_refuses_and_allows() -> None:
    for text, why in REFUSED.items():
        address = ipaddress.ip_address(text)
        assert rules.address_refusal(address, allow_private=False) == why, text
    for text in ALLOWED:
        assert rules.address_refusal(ipaddress.ip_address(text), allow_private=False) is None, text
    # The setting lets tests reach their own machine, never an address no server can have.
    assert rules.address_refusal(ipaddress.ip_address("127.0.0.1"), allow_private=True) is None
    assert rules.address_refusal(ipaddress.ip_address("::ffff:10.0.0.1"), allow_private=True) is None
    for text in ("0.0.0.0", "::", "224.0.0.1", "::ffff:224.0.0.1"):
        assert rules.address_refusal(ipaddress.ip_address(text), allow_private=True) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/hooks",  # https only
        "ftp://93.184.215.14/hooks",
        "https://127.0.0.1/hooks",
        "https://10.0.0.8:8443/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://[::ffff:a00:1]/hooks",
        "https://localhost/hooks",  # a name that resolves to loopback
        "https://LOCALHOST:443/hooks",
        "https://2130706433/hooks",  # 127.0.0.1 spelt as one number
        "https://0x7f.1/hooks",
        "https://0.0.0.0/hooks",
        "https://100.64.0.1/hooks",
        "https://user:pw@93.184.215.14/hooks",
        "https://93.184.215.14/hooks#part",
        "https:///hooks",
        "https://93.184.215.14:0/",
        "https://93.184.215.14:99999/",
        "https://exämple.com/",
    ],
)
async def test_registration_refuses(
    client: httpx.AsyncClient, db: Database, api: dict[str, str], url: str
) -> None:
    body = problem(await client.post(ENDPOINTS, json={"url": url}, headers=api), 422)
    assert body["errors"][0]["field"] == "url"
    async with db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


async def test_a_change_of_url_is_checked_the_same_way(
    client: httpx.AsyncClient, api: dict[str, str]
) -> None:
    endpoint = await register(client, api, "https://93.184.215.14/hooks")
    path = f"{ENDPOINTS}/{endpoint['id']}"
    problem(await client.patch(path, json={"url": "https://[::ffff:127.0.0.1]/x"}, headers=api), 422)
    assert (await client.get(path, headers=api)).json()["url"] == "https://93.184.215.14/hooks"


async def test_with_the_setting_private_addresses_and_http_are_accepted(
    private_client: httpx.AsyncClient, api: dict[str, str]
) -> None:
    for url in ("http://127.0.0.1:9/x", "https://localhost/x", "http://[::1]:9/x"):
        await register(private_client, api, url)
    problem(await private_client.post(ENDPOINTS, json={"url": "http://0.0.0.0:9/"}, headers=api), 422)


async def test_delivery_checks_the_address_again(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    settings: Settings,
    receiver: Receiver,
) -> None:
    """Registered while private addresses were allowed, delivered once they are not: nothing connects."""
    tenant = await make_tenant(db, "Rebind")
    https_port = receiver.port
    loopback = await register(private_client, api, f"https://127.0.0.1:{https_port}/ip")
    by_name = await register(private_client, api, f"https://localhost:{https_port}/name")
    mapped = await register(private_client, api, f"https://[::ffff:127.0.0.1]:{https_port}/mapped")
    plain = await register(private_client, api, f"{receiver.url}/plain")
    strict = webhook_settings(settings, webhook_allow_private_urls=False, webhook_retry_schedule="")
    async with running(worker(db, strict)):
        await emit(db, tenant.id, 1)
        for endpoint in (loopback, by_name, mapped, plain):
            await eventually(lambda e=endpoint: _attempted(db, e["id"]))
    assert receiver.requests == []
    for endpoint in (loopback, by_name, mapped):
        [attempt] = await attempts_of(db, endpoint["id"])
        assert (attempt.outcome, attempt.error, attempt.http_status) == ("failed", "address_refused", None)
    [attempt] = await attempts_of(db, plain["id"])
    assert (attempt.outcome, attempt.error) == ("failed", "url_refused")


async def _attempted(db: Database, endpoint_id: str) -> bool:
    return bool(await attempts_of(db, endpoint_id))


async def test_the_connection_goes_to_the_checked_address_only() -> None:
    strict = GuardedBackend(allow_private=False)
    for host in ("localhost", "127.0.0.1", "::1", "::ffff:127.0.0.1", "2130706433"):
        with pytest.raises(rules.AddressRefused):
            await strict.connect_tcp(host, 9)


async def test_tls_uses_the_endpoints_name_on_the_checked_address(
    db: Database, private_client: httpx.AsyncClient, api: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    server_context, client_context, names = tls_pair(tmp_path, "localhost")
    receiver = Receiver(ssl_context=server_context)
    await receiver.start()
    tenant = await make_tenant(db, "Tls")
    endpoint = await register(private_client, api, f"https://localhost:{receiver.port}/tls")
    wh = webhook_settings(settings)
    try:
        trusting = worker(db, wh, deliverer=WebhookDeliverer(db, wh, ssl_context=client_context))
        async with running(trusting):
            await emit(db, tenant.id, 1)
            await eventually(lambda: len(receiver.answered()) == 1)
        [request] = receiver.requests
        assert request.headers["host"] == f"localhost:{receiver.port}"
        assert names == ["localhost"]  # SNI: the name, though the socket went to 127.0.0.1
        # The usual trust store does not know this certificate: a failed attempt, nothing sent.
        async with running(worker(db, webhook_settings(settings, webhook_retry_schedule=""))):
            await emit(db, tenant.id, 2)
            await eventually(lambda: _failed_attempt(db, endpoint["id"]))
        assert len(receiver.requests) == 1
        assert [a.error for a in await attempts_of(db, endpoint["id"]) if a.outcome == "failed"] == ["tls"]
    finally:
        await receiver.stop()


async def _failed_attempt(db: Database, endpoint_id: str) -> bool:
    return any(a.outcome == "failed" for a in await attempts_of(db, endpoint_id))


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    db: Database,
    private_client: httpx.AsyncClient,
    api: dict[str, str],
    wh_settings: Settings,
    receiver: Receiver,
) -> None:
    elsewhere = Receiver()
    await elsewhere.start()
    try:
        receiver.answer = lambda _: 307
        receiver.location = f"{elsewhere.url}/stolen"
        tenant = await make_tenant(db, "Redirect")
        endpoint = await register(private_client, api, f"{receiver.url}/moved")
        async with running(worker(db, wh_settings)):
            await emit(db, tenant.id, 1)
            await eventually(lambda: len(receiver.requests) >= 2)  # tried again, never followed
        assert elsewhere.requests == []
        log = await attempts_of(db, endpoint["id"])
        assert log and all((a.outcome, a.http_status) == ("failed", 307) for a in log)
    finally:
        await elsewhere.stop()
