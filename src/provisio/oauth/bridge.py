"""The async adapter: run Authlib's synchronous flow inside one database transaction.

``AsyncSession.run_sync`` hands the callable a synchronous ``Session`` whose queries are awaited on the
event loop underneath (SQLAlchemy's greenlet bridge), so Authlib's callbacks can query without blocking
the loop or needing a second, blocking driver. The transaction commits when the callable returns, even
when it returns an OAuth error response: refusing a reused code or refresh token also revokes tokens,
and that must stick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.oauth.server import ProvisioAuthorizationServer

T = TypeVar("T")


async def with_server(
    db: Database, settings: Settings, work: Callable[[ProvisioAuthorizationServer], T]
) -> T:
    def run(session: Session) -> T:
        return work(ProvisioAuthorizationServer(session, settings))

    async with db.writing() as session:
        return await session.run_sync(run)
