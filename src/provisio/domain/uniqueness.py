"""Check-then-write races on a unique index, turned into the conflict the check itself gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.domain.errors import DomainError


@asynccontextmanager
async def conflict_on(
    session: AsyncSession, markers: tuple[str, ...], conflict: DomainError
) -> AsyncIterator[None]:
    """Run the block's writes inside a savepoint. A concurrent writer that won the race trips a unique
    index; when the database's message names one of ``markers`` (the index or its column), ``conflict``
    is raised instead, the same answer the prior check gives. Any other integrity error propagates."""
    try:
        async with session.begin_nested():
            yield
    except IntegrityError as exc:
        message = str(exc.orig).lower()
        if any(marker in message for marker in markers):
            raise conflict from exc
        raise


async def flush_or_conflict(session: AsyncSession, markers: tuple[str, ...], conflict: DomainError) -> None:
    """Flush the session's pending objects under ``conflict_on``."""
    async with conflict_on(session, markers, conflict):
        await session.flush()
