"""Webhook tests: a receiver on 127.0.0.1, an app that accepts such private URLs, fast worker settings,
and no endpoint, webhook row or attempt left over from another test (the fan-out is deployment-wide)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage, WebhookAttempt, WebhookEndpoint
from provisio.domain import host_events
from provisio.domain import webhooks as rules
from provisio.notify import outbox
from provisio.notify.worker import OutboxWorker
from tests.api.conftest import new_key
from tests.conftest import BASE_URL
from tests.notify.conftest import fast
from tests.webhooks.receiver import Receiver

OPERATOR = host_events.Actor(host_events.OPERATOR, "1", "test")
ENDPOINTS = "/api/v1/webhook-endpoints"


async def _clean(db: Database) -> None:
    async with db.writing() as session:
        await session.execute(delete(WebhookEndpoint))
        await session.execute(delete(OutboxMessage).where(OutboxMessage.kind == outbox.WEBHOOK))


@pytest.fixture(autouse=True)
async def no_endpoints(db: Database) -> AsyncIterator[None]:
    """No endpoint of an earlier test receives this test's events, nor one of this test a later's."""
    await _clean(db)
    yield
    await _clean(db)


def webhook_settings(settings: Settings, **changes: Any) -> Settings:
    """Private URLs allowed (the receiver is on 127.0.0.1), short timeouts, retries a few tenths of a
    second apart."""
    values: dict[str, Any] = {
        "webhook_allow_private_urls": True,
        "webhook_retry_schedule": ",".join(["0.1"] * 30),
        "webhook_timeout_seconds": 3.0,
        **changes,
    }
    return fast(settings, **values)


@pytest.fixture
def wh_settings(settings: Settings) -> Settings:
    return webhook_settings(settings)


@pytest.fixture(scope="session")
async def private_app(settings: Settings) -> AsyncIterator[object]:
    """The app with PROVISIO_WEBHOOK_ALLOW_PRIVATE_URLS=true (its worker off, as the shared app's)."""
    application = create_app(settings.model_copy(update={"webhook_allow_private_urls": True}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def private_client(private_app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=private_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


@pytest.fixture
async def api(db: Database) -> dict[str, str]:
    issued = await new_key(db, "webhook tests")
    return {"Authorization": f"Bearer {issued.key}"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    await found.start()
    yield found
    found.release.set()
    await found.stop()


def worker(db: Database, settings: Settings, **kwargs: Any) -> OutboxWorker:
    """A worker that delivers webhooks only (e-mail: pass ``senders``)."""
    kwargs.setdefault("senders", {})
    return OutboxWorker(db, settings, **kwargs)


async def register(client: httpx.AsyncClient, api: dict[str, str], url: str, **body: Any) -> dict[str, Any]:
    r = await client.post(ENDPOINTS, json={"url": url, **body}, headers=api)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def emit(db: Database, workspace_id: str, n: int, type_: str = host_events.SEATS_PURCHASED) -> str:
    async with db.writing() as session:
        return await host_events.emit(
            session, type=type_, workspace_id=workspace_id, actor=OPERATOR, data={"n": n}
        )


async def attempts_of(db: Database, endpoint_id: str) -> list[WebhookAttempt]:
    async with db.reading() as session:
        return list(
            (
                await session.scalars(
                    select(WebhookAttempt)
                    .where(WebhookAttempt.endpoint_id == endpoint_id)
                    .order_by(WebhookAttempt.id)
                )
            ).all()
        )


async def endpoint_row(db: Database, endpoint_id: str) -> WebhookEndpoint:
    async with db.reading() as session:
        return await rules.get_endpoint(session, endpoint_id)
