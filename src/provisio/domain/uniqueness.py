"""Check-then-insert races on a unique index, turned into the conflict the check itself gives."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.domain.errors import DomainError


async def flush_or_conflict(session: AsyncSession, markers: tuple[str, ...], conflict: DomainError) -> None:
    """Flush inside a savepoint. A concurrent writer that won the race trips a unique index; when the
    database's message names one of ``markers`` (the index or its column), ``conflict`` is raised instead,
    the same answer the prior check gives. Any other integrity error propagates."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        message = str(exc.orig).lower()
        if any(marker in message for marker in markers):
            raise conflict from exc
        raise
