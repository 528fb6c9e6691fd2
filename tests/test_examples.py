"""The examples in examples/ work as the README shows them: each run as its own process against real
parts (a running worker that delivers to the receiver; a live server that the poller reads)."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import utcnow
from provisio.domain import host_events
from tests.api.conftest import new_key
from tests.conftest import Tenant, make_tenant
from tests.domain.helpers import okta_user
from tests.live_server import live_server
from tests.notify.conftest import eventually, free_port, running
from tests.webhooks.conftest import (
    api,
    no_endpoints,
    private_app,
    private_client,
    register,
    wh_settings,
    worker,
)

__all__ = ["api", "no_endpoints", "private_app", "private_client", "wh_settings"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WITHIN = 60.0  # seconds any one step may take on a busy machine


async def _create_user(client: httpx.AsyncClient, tenant: Tenant, email: str) -> str:
    r = await client.post(
        f"{tenant.base}/Users",
        json=okta_user(email),
        headers={**tenant.headers, "Content-Type": "application/scim+json"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _run(script: str, env: dict[str, str], **kwargs: Any) -> asyncio.subprocess.Process:
    # Without PYTHONUNBUFFERED (set where the tests run, seldom where the examples do): a line the
    # example does not flush would wait in its buffer, and the test would see it fail as a user would.
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / script), env={**inherited, **env}, **kwargs
    )


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest.fixture
async def example_receiver(
    private_client: httpx.AsyncClient, api: dict[str, str], db: Database
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Tenant, dict[str, Any]]]:
    """examples/webhook_receiver.py running, the endpoint of a fresh workspace."""
    tenant = await make_tenant(db, "Example")
    port = free_port()
    endpoint = await register(private_client, api, f"http://127.0.0.1:{port}/hooks", workspace=tenant.key)
    process = await _run(
        "webhook_receiver.py",
        {"WEBHOOK_SECRET": endpoint["secret"], "PORT": str(port)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # its request log
    )
    try:
        await eventually(lambda: _accepts(port), within=WITHIN)
        yield process, tenant, endpoint
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), WITHIN)


async def test_the_webhook_receiver_prints_what_it_is_sent_once_and_refuses_a_forgery(
    db: Database,
    private_client: httpx.AsyncClient,
    wh_settings: Settings,
    example_receiver: tuple[asyncio.subprocess.Process, Tenant, dict[str, Any]],
) -> None:
    process, tenant, endpoint = example_receiver
    assert process.stdout is not None
    url = endpoint["url"]
    email = f"ada@{tenant.key}.test"

    async def line() -> str:
        assert process.stdout is not None
        return (await asyncio.wait_for(process.stdout.readline(), WITHIN)).decode().rstrip("\n")

    async with running(worker(db, wh_settings)):
        await _create_user(private_client, tenant, email)
        assert await line() == f"member.created {tenant.key} {email}"

    async with httpx.AsyncClient(timeout=WITHIN) as http:
        # Signed with another secret: refused, and nothing printed (see the line read last).
        now = str(int(utcnow().timestamp()))
        forged = base64.b64encode(b"x" * 32).decode()
        r = await http.post(
            url,
            content=b'{"type": "member.deleted"}',
            headers={
                "webhook-id": "msg_forged",
                "webhook-timestamp": now,
                "webhook-signature": f"v1,{forged}",
            },
        )
        assert r.status_code == 400

        async def send(event_id: str, event: dict[str, Any]) -> int:
            body = orjson.dumps(event)
            at = utcnow()
            signature = Webhook(endpoint["secret"]).sign(event_id, at, body)
            headers = {
                "webhook-id": event_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": signature,
            }
            return (await http.post(url, content=body, headers=headers)).status_code

        # A redelivery of the event already handled is acknowledged and skipped; a new one is printed.
        async with db.reading() as session:
            [created] = await host_events.read_after(
                session, limit=10, workspace_id=tenant.id, types=[host_events.MEMBER_CREATED]
            )
        assert await send(created.id, created.as_json()) == 204
        ping = {"type": "webhook.test", "workspace": tenant.key, "data": {}}
        assert await send(host_events.new_event_id(), ping) == 204
    assert await line() == f"webhook.test {tenant.key} None"


async def test_the_poller_prints_each_event_once_across_runs(
    database_url: str, db: Database, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant(db, "Polled")
    first, second = f"ada@{tenant.key}.test", f"bob@{tenant.key}.test"
    await _create_user(client, tenant, first)
    issued = await new_key(db, "poll example")
    env = {"PROVISIO_API_KEY": issued.key, "CURSOR_FILE": str(tmp_path / "cursor"), "ONCE": "1"}

    async def poll() -> list[str]:
        process = await _run("poll_events.py", env, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(process.communicate(), WITHIN)
        assert process.returncode == 0
        return out.decode().splitlines()

    with live_server(database_url) as live:
        env["PROVISIO_URL"] = live.url
        lines = await poll()
        assert lines.count(f"member.created {tenant.key} {first}") == 1
        assert await poll() == []  # from the cursor: nothing new
        await _create_user(client, tenant, second)
        assert await poll() == [f"member.created {tenant.key} {second}"]
