"""The async adapter: run Authlib's synchronous flow inside one database transaction.

``AsyncSession.run_sync`` hands the callable a synchronous ``Session`` whose queries are awaited on the
event loop underneath (SQLAlchemy's greenlet bridge), so Authlib's callbacks can query without blocking
the loop or needing a second, blocking driver. The transaction commits when the callable returns, even
when it returns an OAuth error response: refusing a reused code or refresh token also revokes tokens,
and that must stick.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.oauth.server import ProvisioAuthorizationServer

T = TypeVar("T")


class OAuthTransaction:
    """One transaction shared by Authlib steps (``run``) and ordinary async queries (``session``)."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.server = ProvisioAuthorizationServer(session.sync_session, settings)

    async def run(self, work: Callable[[ProvisioAuthorizationServer], T]) -> T:
        def call(_: Session) -> T:
            return work(self.server)

        return await self.session.run_sync(call)


@asynccontextmanager
async def oauth_transaction(db: Database, settings: Settings) -> AsyncIterator[OAuthTransaction]:
    async with db.writing() as session:
        yield OAuthTransaction(session, settings)


async def with_server(
    db: Database, settings: Settings, work: Callable[[ProvisioAuthorizationServer], T]
) -> T:
    async with oauth_transaction(db, settings) as transaction:
        return await transaction.run(work)
