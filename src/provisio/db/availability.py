"""When the database cannot answer: which failures those are, and the one retry a request gets.

PostgreSQL ends connections on a failover, a restart, an idle timeout or ``pg_terminate_backend``. The
pool has no pre-ping (a round trip before every statement), so a dead connection is found when a
request uses it; SQLAlchemy then marks every connection opened before that moment for replacement at
its next checkout, so a request that re-runs gets a fresh one. A re-run is safe only when nothing the
failed run did can have been committed:

- a read, or a transaction that had not yet sent COMMIT, committed nothing (the server rolls back what
  a lost connection leaves open);
- a statement never sent (the driver already knew its connection was closed, or could not connect)
  did nothing;
- a COMMIT, or a write in autocommit, lost in flight may or may not have committed: not re-run;
- nor is anything after an earlier commit of the same run (re-running would repeat that commit).

``Database`` (``provisio.db.engine``) raises ``DatabaseUnavailable`` for these failures, and for
SQLite's lock timeouts and I/O errors (never retried: a lock timeout has already waited). Each surface
answers a final one with 503 and ``Retry-After``: the SCIM dispatcher and the FastAPI middleware
(``provisio.retry``), both through ``retry_once``.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import structlog
from sqlalchemy.exc import DBAPIError

log = structlog.get_logger("provisio.db")

T = TypeVar("T")

# What a 503 asks the client to wait: long enough for the pool to reconnect or a failover to settle.
RETRY_AFTER_SECONDS = 2

# asyncpg's errors for a connection that is gone or cannot be made (SQLSTATE classes 08 and 57P).
_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
# ... of which these are raised before a statement is sent: asyncpg checks that its connection is
# open first (InterfaceError "connection is closed"), and the others are answers to connecting.
_NOT_SENT = (
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ClientCannotConnectError,
    asyncpg.ConnectionRejectionError,
)
# SQLite: another process holds the lock past the wait, or the file cannot be read or written.
_SQLITE_STUCK = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN")


class DatabaseUnavailable(Exception):
    """The database could not answer; ``retryable`` when nothing can have been committed, so the whole
    operation may run again on a fresh connection."""

    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


class _Loss(enum.Enum):
    NOT_SENT = "not sent"  # the statement never reached the server
    IN_FLIGHT = "in flight"  # the connection went while the statement ran
    STUCK = "stuck"  # SQLite: locked past the wait, or an I/O error


def _loss(exc: BaseException) -> _Loss | None:
    if isinstance(exc, DBAPIError):
        # SQLAlchemy wraps the asyncpg adapter's error, which wraps asyncpg's own.
        orig = exc.orig
        cause = (orig.__cause__ or orig) if orig is not None else None
        if exc.connection_invalidated or isinstance(cause, _LOST):
            return _Loss.NOT_SENT if isinstance(cause, _NOT_SENT) else _Loss.IN_FLIGHT
        exc = cause if cause is not None else exc
    if isinstance(exc, sqlite3.OperationalError):
        name = getattr(exc, "sqlite_errorname", None) or ""
        return _Loss.STUCK if name.startswith(_SQLITE_STUCK) else None
    if isinstance(exc, OSError):
        # Raised unwrapped only by connecting (refused, reset, timed out): a database block runs no
        # other I/O.
        return _Loss.NOT_SENT
    return None


@dataclass
class _Attempt:
    committed: bool = False


# The run of an operation under way (``retry_once``): whether it has committed something yet.
_attempt: ContextVar[_Attempt | None] = ContextVar("provisio_db_attempt", default=None)


def committed_before() -> bool:
    """Whether the current run already committed (or sent a COMMIT): then no failure is retryable."""
    attempt = _attempt.get()
    return attempt is not None and attempt.committed


def note_commit() -> None:
    """Called by ``Database`` before a COMMIT is sent or an autocommit block may have written."""
    attempt = _attempt.get()
    if attempt is not None:
        attempt.committed = True


def unavailable(
    exc: BaseException, *, earlier_commit: bool, in_flight_safe: bool
) -> DatabaseUnavailable | None:
    """The ``DatabaseUnavailable`` that ``exc`` means, or None for any other failure. ``in_flight_safe``:
    a statement lost in flight cannot have committed (a read, or before COMMIT)."""
    loss = _loss(exc)
    if loss is None:
        return None
    retryable = not earlier_commit and (
        loss is _Loss.NOT_SENT or (loss is _Loss.IN_FLIGHT and in_flight_safe)
    )
    detail = f"database unavailable ({loss.value}): {type(exc).__name__}: {exc}"
    return DatabaseUnavailable(detail.splitlines()[0], retryable=retryable)


async def retry_once(run: Callable[[], Awaitable[T]]) -> T:
    """``run()``, and once more if it failed with a retryable ``DatabaseUnavailable``; a second failure,
    or one that is not retryable, propagates."""
    token = _attempt.set(_Attempt())
    try:
        try:
            return await run()
        except DatabaseUnavailable as exc:
            if not exc.retryable:
                raise
            log.warning("db.retry", error=exc.detail)
        _attempt.set(_Attempt())
        return await run()
    finally:
        _attempt.reset(token)
