"""SQLite through the standard ``sqlite3`` module, run on the event loop's own thread.

aiosqlite runs every call on a helper thread and hands the result back through the event loop: three
thread hops per statement, which cost ~120 µs of CPU for a lookup that takes SQLite ~5 µs (measured:
an ORM lookup took ~370 µs of CPU through aiosqlite against ~30 µs through this dialect). Calling
``sqlite3`` inline is cheaper than any hand-off, so this dialect is SQLAlchemy's own pysqlite dialect
declared async: ``AsyncEngine``/``AsyncSession`` run it inside their greenlet without ever awaiting.

The cost is that a statement blocks the event loop while it runs. SCIM statements are index lookups and
bounded pages, so that is microseconds to a few milliseconds; what must not block is waiting for
another process's write lock, and ``Database.writing`` waits for that with ``asyncio.sleep`` instead
of SQLite's busy handler (see ``provisio.db.engine``).

Use it through ``AsyncSession`` (``execute``, ``run_sync``) or ``AsyncConnection.run_sync``:
``AsyncConnection.execute`` insists on seeing its driver await and raises ``AwaitRequired`` here.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL

DRIVER_NAME = "sqlite+provisio_inline"


class InlineCursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """What ``AsyncSession`` calls to buffer an async driver's rows; a sqlite3 cursor needs no
        event loop to be read later, so there is nothing to do."""


class InlineConnection(sqlite3.Connection):
    def cursor(self, factory: Any = InlineCursor) -> Any:
        return super().cursor(factory)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, usable by ``create_async_engine``; every call completes without awaiting."""

    is_async = True
    has_terminate = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # The asyncio-aware queue pool: a task waiting for a connection awaits instead of blocking.
        return pool.AsyncAdaptedQueuePool

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.close()

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        # The pool may close a connection from another thread at interpreter exit.
        kwargs["check_same_thread"] = False
        kwargs["factory"] = InlineConnection
        return args, kwargs


registry.register("sqlite.provisio_inline", __name__, "InlineSQLiteDialect")
