"""Buckets in the database (``rate_limit_buckets``), shared by every process that uses it.

A claim is one upsert, the GCRA step of ``provisio.ratelimit.core.gcra`` in SQL: the row lock of the
conflicting row orders concurrent claims on one bucket. Claims run on an engine of their own, so a
request that holds a connection of the server's pool never waits for a second one from that pool, and
never inside a request's transaction. On SQLite a claim is a write and would queue on the database's
one writer lock behind the very request that asks for it: there the server keeps its buckets in memory
(``provisio.ratelimit.store_for``); this store runs on SQLite for tools and tests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Double, Integer, bindparam, case, cast, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from provisio.db.engine import Database
from provisio.db.models import RateLimitBucket
from provisio.ratelimit.core import EPSILON, Grant, Rate, gcra, retry_after


def _claim_statement(dialect: str) -> Any:
    now = bindparam("now", type_=Double)
    interval = bindparam("interval", type_=Double)
    tolerance = bindparam("tolerance", type_=Double)
    want = bindparam("want", type_=Integer)
    tat = RateLimitBucket.tat
    base = case((tat > now, tat), else_=now)
    available = (tolerance - (base - now)) / interval + bindparam("epsilon", type_=Double)
    whole: ColumnElement[Any] = (
        cast(func.floor(available), Integer) if dialect == "postgresql" else cast(available, Integer)
    )  # SQLite's CAST truncates, which is floor here: available is at least 1 in that branch
    granted = case((available < 1, 0), (available >= want, want), else_=whole)
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(RateLimitBucket).values(
        key=bindparam("key"), tat=bindparam("fresh_tat", type_=Double), granted=bindparam("fresh_granted")
    )
    return insert.on_conflict_do_update(
        index_elements=[RateLimitBucket.key], set_={"granted": granted, "tat": base + granted * interval}
    ).returning(RateLimitBucket.granted, RateLimitBucket.tat)


class SqlStore:
    shared = True

    def __init__(self, database_url: str, *, pool_size: int = 2) -> None:
        self.db = Database.from_url(database_url, pool_size=pool_size)
        self._statement = _claim_statement(self.db.dialect)

    async def claim(self, key: str, want: int, rate: Rate, now: float) -> Grant:
        fresh_tat, fresh = gcra(None, now, want, rate)  # the row when this is the bucket's first claim
        params = {
            "key": key,
            "now": now,
            "want": want,
            "interval": rate.interval,
            "tolerance": rate.tolerance,
            "epsilon": EPSILON,
            "fresh_tat": fresh_tat,
            "fresh_granted": fresh.granted,
        }
        if self.db.single_statement_writes:
            # PostgreSQL, autocommit on a plain connection: one round trip, no BEGIN/COMMIT, no ORM.
            async with self.db.read_engine.connect() as conn:
                row = (await conn.execute(self._statement, params)).one()
        else:
            async with self.db.writing() as session:
                row = (await session.execute(self._statement, params)).one()
        granted, tat = int(row[0]), float(row[1])
        if granted:
            return Grant(granted)
        return Grant(0, retry_after(tat, now, rate))

    async def close(self) -> None:
        await self.db.dispose()
