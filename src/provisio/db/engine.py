"""Async engines and sessions for SQLite (embedded default) and PostgreSQL.

Users give plain SQLAlchemy URLs; the driver is picked here: asyncpg for PostgreSQL, and for SQLite
the standard ``sqlite3`` module called on the event loop's thread (``provisio.db.inline_sqlite``).
On SQLite, writes run in ``BEGIN IMMEDIATE`` transactions so that two writers queue on the database
lock instead of one of them failing half-way with "database is locked" when it upgrades a read lock.

Reads run in autocommit (each statement its own snapshot, no BEGIN/ROLLBACK round trips): a SCIM
lookup is one statement, a list page two or three (the caller, the page, and a count when a filtered
page is full), and round trips are most of a lookup's cost.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_

from provisio.db.availability import committed_before, note_commit, unavailable
from provisio.db.inline_sqlite import DRIVER_NAME as INLINE_SQLITE

# How long a write waits for another process (a CLI command, a migration) to release SQLite's write
# lock, polling with asyncio.sleep so that the event loop keeps serving meanwhile.
SQLITE_WRITE_LOCK_WAIT_S = 30.0
# Readers in WAL mode wait only in rare moments (recovery, the last connection's checkpoint); that
# wait blocks the loop, so it is short.
SQLITE_READ_BUSY_TIMEOUT_MS = 1_000


def _orjson_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# Member documents are JSON columns read on every SCIM request: orjson parses them several times faster.
JSON_CODEC: dict[str, Any] = {"json_serializer": _orjson_dumps, "json_deserializer": orjson.loads}


def async_url(url: str | URL) -> URL:
    """Turn ``sqlite:///x`` / ``postgresql://…`` into the async-driver form SQLAlchemy needs."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername=INLINE_SQLITE)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(
        f"Unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql://"
    )


def ensure_sqlite_dir(url: str | URL) -> None:
    """Create the folder of an SQLite database file (the default lives in ./var/)."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _begin_immediate(dbapi_conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's write lock without blocking the event loop."""
    deadline = time.monotonic() + SQLITE_WRITE_LOCK_WAIT_S
    delay = 0.001
    while True:
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        # Inside SQLAlchemy's greenlet: this awaits on the event loop.
        await_(asyncio.sleep(delay))
        delay = min(delay * 2, 0.05)


def _make_sqlite_engine(url: URL, *, writer: bool, pool_size: int) -> AsyncEngine:
    """SQLite: the writer engine runs ``BEGIN IMMEDIATE`` transactions; the reader engine runs each
    statement on its own (autocommit, ``query_only``), which makes any write through it fail loudly
    instead of slipping past the writer's lock."""
    ensure_sqlite_dir(url)
    engine = create_async_engine(
        url,
        **JSON_CODEC,
        # The busy handler sleeps on the event loop's thread: the writer never uses it (see above).
        connect_args={"timeout": 0 if writer else SQLITE_READ_BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
        max_overflow=0,
        isolation_level=None if writer else "AUTOCOMMIT",
        pool_reset_on_return="rollback" if writer else None,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={0 if writer else SQLITE_READ_BUSY_TIMEOUT_MS}")
        if not writer:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    if writer:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            _begin_immediate(conn.connection.driver_connection)

    return engine


def _is_read(exc: BaseException) -> bool:
    """Whether the statement that failed only read (an autocommit block's writes are not SELECTs)."""
    statement = getattr(exc, "statement", None)
    return isinstance(statement, str) and statement.lstrip()[:6].upper() == "SELECT"


@dataclass
class Database:
    """Both engines for one database URL; ``read`` and ``write`` differ only on SQLite."""

    url: URL
    read_engine: AsyncEngine
    write_engine: AsyncEngine

    def __post_init__(self) -> None:
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        # SQLite has one writer at a time. Writers of this process queue here, woken the moment the
        # previous one commits, instead of polling the file lock with SQLite's sleeping busy handler.
        self._write_turn: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def from_url(cls, url: str | URL, *, pool_size: int = 10) -> Database:
        aurl = async_url(url)
        if aurl.get_backend_name() == "sqlite":
            # One writer at a time is all SQLite allows; more connections would only queue on its lock.
            return cls(
                aurl,
                _make_sqlite_engine(aurl, writer=False, pool_size=pool_size),
                _make_sqlite_engine(aurl, writer=True, pool_size=1),
            )
        # No pre-ping: it is a round trip before every statement. A connection that died with its server
        # fails the statement that uses it, SQLAlchemy then replaces every connection opened before, and
        # the request runs again where that is safe (``provisio.db.availability``).
        write = create_async_engine(aurl, **JSON_CODEC, pool_size=pool_size, max_overflow=pool_size)
        read = write.execution_options(isolation_level="AUTOCOMMIT")
        return cls(aurl, read, write)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        earlier_commit = committed_before()
        try:
            async with self._read_sessions() as session:
                yield session
        except Exception as exc:
            problem = unavailable(exc, earlier_commit=earlier_commit, in_flight_safe=True)
            if problem is None:
                raise
            raise problem from exc

    @property
    def single_statement_writes(self) -> bool:
        """Whether a write that is one statement may run on its own, outside a transaction (PostgreSQL;
        on SQLite every write takes the writer's turn and ``BEGIN IMMEDIATE``)."""
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session whose every statement commits by itself: no BEGIN, no COMMIT round trip.

        Its block reads first and writes last, in one statement: a read lost with its connection is
        retryable, a write lost in flight is not (it may have committed)."""
        if not self.single_statement_writes:
            raise RuntimeError("autocommit writes are for PostgreSQL; use writing()")
        earlier_commit = committed_before()
        try:
            async with self._read_sessions() as session:
                yield session
        except Exception as exc:
            problem = unavailable(exc, earlier_commit=earlier_commit, in_flight_safe=_is_read(exc))
            if problem is None:
                raise
            raise problem from exc
        note_commit()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block ends cleanly and rolls back on any error.

        A connection lost before COMMIT is sent leaves nothing committed (retryable); one lost during
        COMMIT leaves the outcome unknown (not retryable)."""
        earlier_commit = committed_before()
        committing = False
        try:
            if self._write_turn is None:
                async with self._write_sessions() as session, session.begin():
                    yield session
                    committing = True
                    note_commit()
            else:
                async with self._write_turn, self._write_sessions() as session, session.begin():
                    yield session
                    committing = True
                    note_commit()
        except Exception as exc:
            problem = unavailable(exc, earlier_commit=earlier_commit, in_flight_safe=not committing)
            if problem is None:
                raise
            raise problem from exc

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine.pool is not self.read_engine.pool:
            await self.write_engine.dispose()
