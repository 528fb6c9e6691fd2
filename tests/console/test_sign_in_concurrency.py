"""Sign-in under load: the throttle holds against concurrent attempts (both databases), and the slow
password check neither stalls the event loop nor holds a database transaction."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from provisio.db.engine import Database
from provisio.db.models import SignInFailure
from provisio.domain import admins as admin_service
from tests.oauth.helpers import PASSWORD, csrf_token, make_oauth_tenant


def _browser(app: object, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://provisio.test")


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    # An address of its own, so the per-address limit of other tests does not interfere.
    async with _browser(app, f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7") as c:
        yield c


async def _attempts(browser: httpx.AsyncClient, email: str, password: str, n: int) -> list[int]:
    token = csrf_token((await browser.get("/console/login")).text)

    async def attempt() -> int:
        r = await browser.post(
            "/console/login", data={"email": email, "password": password, "csrf_token": token}
        )
        return r.status_code

    return list(await asyncio.gather(*(attempt() for _ in range(n))))


async def test_concurrent_wrong_passwords_are_throttled(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    statuses = await _attempts(browser, tenant.admin_email, "wrong password!", 12)
    assert sorted(statuses) == [401] * 5 + [429] * 7  # console_sign_in_max_failures = 5
    async with db.reading() as session:
        recorded = await session.scalar(
            select(func.count()).where(SignInFailure.email_lower == tenant.admin_email.lower())
        )
    assert recorded == 5  # refused attempts do not extend the lock-out
    assert await _attempts(browser, tenant.admin_email, PASSWORD, 1) == [429]


async def test_concurrent_right_passwords_all_sign_in(db: Database, browser: httpx.AsyncClient) -> None:
    tenant = await make_oauth_tenant(db)
    assert await _attempts(browser, tenant.admin_email, PASSWORD, 4) == [303] * 4


class _SlowHasher:
    """The real hasher, made to take half a second of (blocking) time per check, reporting whether a
    database connection was held meanwhile."""

    def __init__(self, real: Any, db: Database) -> None:
        self.real, self.db = real, db
        self.connections_held: list[int] = []

    def _slow(self) -> None:
        self.connections_held.append(self.db.write_engine.pool.checkedout())  # type: ignore[attr-defined]
        time.sleep(0.5)

    def verify(self, *args: Any) -> Any:
        self._slow()
        return self.real.verify(*args)

    def verify_and_update(self, *args: Any) -> Any:
        self._slow()
        return self.real.verify_and_update(*args)


@pytest.mark.parametrize("known", [True, False])
async def test_password_check_runs_off_the_event_loop_and_outside_transactions(
    app: Any, db: Database, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, known: bool
) -> None:
    tenant = await make_oauth_tenant(db)
    email = tenant.admin_email if known else f"nobody-{uuid.uuid4().hex[:6]}@x.test"
    slow = _SlowHasher(admin_service._hasher, app.state.db)
    monkeypatch.setattr(admin_service, "_hasher", slow)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def sign_ins() -> list[int]:
        try:
            # One after the other, so any connection held during a check is that sign-in's own.
            return [(await _attempts(browser, email, "wrong password!", 1))[0] for _ in range(2)]
        finally:
            done.set()

    statuses, _ = await asyncio.gather(sign_ins(), ticker())
    assert statuses == [401, 401]
    assert len(slow.connections_held) == 2
    assert max(gaps) < 0.25, f"event loop stalled for {max(gaps):.2f} s"
    assert slow.connections_held == [0, 0], "a database connection was held during the password check"
