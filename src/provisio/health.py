"""Readiness (``/readyz``): named async checks, each bounded in time, run together on every probe.

``/healthz`` says the process answers; ``/readyz`` says it can serve: the database answers, its schema
is at this version's migration, and the notification outbox's worker is alive and not stuck (the rule
is ``provisio.notify.worker.outbox_problem``'s). A load balancer sends traffic only to instances whose
``/readyz`` is 200.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.migrate import current_revision, head_revision
from provisio.metrics import OutboxHealth
from provisio.notify.worker import outbox_health, outbox_problem


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


Check = Callable[[Database], Awaitable[CheckResult]]


class Readiness:
    """The registry of checks ``/readyz`` runs, in the order they were registered."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self.checks: dict[str, Check] = {}
        self.advisory: set[str] = set()  # reported, but never what makes /readyz 503

    def register(self, name: str, check: Check, *, replace: bool = False, advisory: bool = False) -> None:
        if name in self.checks and not replace:
            raise ValueError(f"a readiness check named {name!r} is already registered")
        self.checks[name] = check
        if advisory:
            self.advisory.add(name)
        else:
            self.advisory.discard(name)

    async def run(self, db: Database) -> tuple[bool, dict[str, dict[str, Any]]]:
        results = await asyncio.gather(*(self._one(check, db) for check in self.checks.values()))
        report = dict(zip(self.checks, results, strict=True))
        for name in self.advisory:
            report[name]["advisory"] = True
        ready = all(result["ok"] for name, result in report.items() if name not in self.advisory)
        return ready, report

    async def _one(self, check: Check, db: Database) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            result = await asyncio.wait_for(check(db), self.timeout_seconds)
        except TimeoutError:
            result = CheckResult(False, {"error": f"no answer within {self.timeout_seconds:g} s"})
        except Exception as exc:
            # The exception's kind only: its message can name hosts, users or paths, and /readyz is
            # often reachable by anyone who can reach the load balancer.
            result = CheckResult(False, {"error": type(exc).__name__})
        took = round((time.perf_counter() - start) * 1000, 1)
        return {"ok": result.ok, **result.detail, "duration_ms": took}


async def database_reachable(db: Database) -> CheckResult:
    async with db.reading() as session:
        await session.execute(text("SELECT 1"))
    return CheckResult(True)


class MigrationsCurrent:
    """The schema is at this version's newest migration. A positive answer is kept for a while (the
    schema does not go back by itself); a negative one is asked again on the next probe."""

    def __init__(self, head: str | None, cache_seconds: float = 30.0) -> None:
        self.head = head
        self.cache_seconds = cache_seconds
        self._current_until = 0.0

    async def __call__(self, db: Database) -> CheckResult:
        if time.monotonic() < self._current_until:
            return CheckResult(True, {"revision": self.head})
        have = await current_revision(db)
        if have != self.head:
            return CheckResult(False, {"revision": have, "expected": self.head})
        self._current_until = time.monotonic() + self.cache_seconds
        return CheckResult(True, {"revision": have})


def outbox_check(provider: OutboxHealth, problem: Callable[[Mapping[str, Any]], str | None]) -> Check:
    """A check on what ``provider`` reports (``depth``, ``oldest_due_age_seconds``,
    ``last_heartbeat_age_seconds``), judged by ``problem``: the worker alive and not stuck."""

    async def outbox(db: Database) -> CheckResult:
        report = await provider(db)
        detail = {
            name: report.get(name)
            for name in ("depth", "oldest_due_age_seconds", "last_heartbeat_age_seconds")
        }
        error = problem(report)
        return CheckResult(error is None, detail if error is None else {**detail, "error": error})

    return outbox


def default_readiness(settings: Settings) -> Readiness:
    readiness = Readiness(settings.readyz_timeout_seconds)
    readiness.register("database", database_reachable)
    readiness.register("migrations", MigrationsCurrent(head_revision(settings.database_url)))
    readiness.register(
        "outbox",
        outbox_check(outbox_health, functools.partial(outbox_problem, settings=settings)),
        # Off: an operator who would rather keep SCIM served while mail cannot leave watches the
        # check's JSON (or the outbox metrics) instead.
        advisory=not settings.readyz_outbox,
    )
    return readiness


async def readyz(request: Request) -> JSONResponse:
    ok, checks = await request.app.state.readiness.run(request.app.state.db)
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
        headers={"Cache-Control": "no-store"},
    )
