"""A real ``provisio worker`` killed (SIGKILL) while the receiver holds a delivery open: a second worker
delivers everything; only the delivery in flight may arrive twice, none is lost, the order holds."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import utcnow
from tests.conftest import make_tenant
from tests.domain.test_cli import SRC
from tests.notify.conftest import eventually
from tests.webhooks.conftest import emit, register
from tests.webhooks.receiver import Receiver

EVENTS = 12
HELD = 5  # the receiver holds the delivery of this event (its index) open


def _env(settings: Settings, mail_dir: Path) -> dict[str, str]:
    return {
        "PROVISIO_DATABASE_URL": settings.database_url,
        "PROVISIO_SECRET_KEY": settings.secret_key,  # opens the endpoint's sealed secret
        "PROVISIO_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "PROVISIO_WEBHOOK_TIMEOUT_SECONDS": "3",
        "PROVISIO_SMTP_TIMEOUT_SECONDS": "2",
        # Short, so that the second worker takes the row over soon after the first one died.
        "PROVISIO_OUTBOX_LEASE_SECONDS": "5",
        "PROVISIO_OUTBOX_POLL_SECONDS": "0.1",
        "PROVISIO_MAIL_DIR": str(mail_dir),
        "PROVISIO_LOG_JSON": "true",
        "PROVISIO_LOG_LEVEL": "WARNING",
        "PATH": "",
        "PYTHONPATH": SRC,
    }


async def _start_worker(settings: Settings, mail_dir: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "provisio.cli",
        "worker",
        env=_env(settings, mail_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), 60)
    assert b"provisio worker" in first, first
    return process


async def test_a_worker_killed_mid_delivery_loses_nothing(
    db: Database, private_client: httpx.AsyncClient, api: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    tenant = await make_tenant(db, "Killed")
    since = utcnow().isoformat()  # after the tenant's own events (its seats, SCIM on): only these below
    events = [await emit(db, tenant.id, n) for n in range(EVENTS)]
    receiver = Receiver(
        hold=lambda request: request.event["id"] == events[HELD] and not receiver.held.is_set()
    )
    await receiver.start()
    # Registered after the events occurred would give it none: replay them to it instead.
    endpoint = await register(private_client, api, f"{receiver.url}/k", workspace=tenant.key)
    r = await private_client.post(
        f"/api/v1/webhook-endpoints/{endpoint['id']}/replay",
        json={"since": since},
        headers=api,
    )
    assert r.status_code == 202 and r.json()["enqueued"] == EVENTS

    first = second = None
    try:
        first = await _start_worker(settings, tmp_path)
        await asyncio.wait_for(receiver.held.wait(), 60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        receiver.release.set()
        second = await _start_worker(settings, tmp_path)
        await eventually(lambda: len(receiver.answered()) >= EVENTS, within=90)
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 60)
        await receiver.stop()

    received = [r.event["id"] for r in receiver.requests]
    # Everything arrived once it was answered; only the one in flight was sent twice.
    assert [r.event["id"] for r in receiver.answered()] == events
    assert received == [*events[: HELD + 1], *events[HELD:]]
    assert second is not None and second.returncode == 0
