"""A real SMTP server (aiosmtpd) on 127.0.0.1 in the tests' event loop, which records what it accepts and
can refuse on demand; workers with fast test timings; an empty outbox for every test."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import delete

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import NotificationDigestEntry, NotificationState, OutboxMessage, WorkerHeartbeat
from provisio.notify.worker import OutboxWorker


class SmtpRecorder:
    """Accepts every message and keeps it, except while told to refuse (``refuse`` more messages)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = 0
        self.refusal = "451 4.3.0 Try again later"
        self.refused = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return self.refusal
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"

    def count_by_message_id(self) -> Counter[str]:
        return Counter(str(message["Message-ID"]) for message in self.messages)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="smtp.test"), "127.0.0.1", self.port or 0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpRecorder]:
    recorder = SmtpRecorder()
    await recorder.start()
    yield recorder
    await recorder.stop()


def fast(settings: Settings, **changes: Any) -> Settings:
    """Worker settings for tests: quick polls, backoffs of a fraction of a second."""
    values: dict[str, Any] = {
        "smtp_tls": "none",
        "smtp_timeout_seconds": 2.0,
        "mail_from": "provisio <noreply@provisio.test>",
        "outbox_poll_seconds": 0.05,
        "outbox_batch_size": 10,
        "outbox_lease_seconds": 10.0,
        "webhook_timeout_seconds": 2.0,  # within the short lease
        "outbox_backoff_seconds": 0.05,
        "outbox_backoff_max_seconds": 0.2,
        "outbox_max_attempts": 10,
        **changes,
    }
    return settings.model_copy(update=values)


@pytest.fixture
def mail_settings(settings: Settings, smtp: SmtpRecorder) -> Settings:
    return fast(settings, smtp_host="127.0.0.1", smtp_port=smtp.port)


@pytest.fixture(autouse=True)
async def empty_outbox(db: Database) -> None:
    """Tests share the session's database: each starts from an empty outbox, no known worker and no
    open notification window (the SCIM failures of earlier tests open windows whose digests a worker
    would otherwise send in the middle of this test)."""
    async with db.writing() as session:
        await session.execute(delete(OutboxMessage))
        await session.execute(delete(WorkerHeartbeat))
        await session.execute(delete(NotificationDigestEntry))
        await session.execute(delete(NotificationState))


@asynccontextmanager
async def running(*workers: OutboxWorker) -> AsyncIterator[None]:
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            await worker.stop()


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
