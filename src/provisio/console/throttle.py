"""Sign-in throttling: too many failures for one e-mail address (or from one client address) in the
window refuse further attempts until the window has passed, whatever the password.

Concurrent attempts must not slip past the limit. Each attempt is therefore checked against the limit
and recorded as a failure in one short transaction *before* the password is checked, and these
transactions run one at a time per e-mail address and per client address: on SQLite every write
transaction is ``BEGIN IMMEDIATE`` (one writer at a time, see ``provisio.db.engine``); on PostgreSQL
they take transaction-scoped advisory locks on the address and the e-mail. A successful sign-in then
clears the e-mail's failures, its own attempt included; a failed one leaves the record in place.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import SignInFailure, utcnow

PER_ADDRESS_FACTOR = 4  # one office behind one NAT may hold several admins
# Advisory-lock namespaces (the first key of PostgreSQL's two-key form).
_LOCK_EMAIL, _LOCK_ADDRESS = 0x70760001, 0x70760002


def _lock_key(value: str) -> int:
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:4], "big", signed=True)


async def _serialise(session: AsyncSession, email_lower: str, client_ip: str) -> None:
    """Make concurrent attempts for this e-mail or from this address wait for each other until commit.
    Always e-mail first, then address, so two attempts never wait for each other both ways."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: the write transaction already holds the database's single write lock
    for namespace, value in ((_LOCK_EMAIL, email_lower), (_LOCK_ADDRESS, client_ip)):
        await session.execute(select(func.pg_advisory_xact_lock(namespace, _lock_key(value))))


async def _is_throttled(session: AsyncSession, settings: Settings, email_lower: str, client_ip: str) -> bool:
    since = utcnow() - timedelta(seconds=settings.console_sign_in_window_seconds)
    by_email = await session.scalar(
        select(func.count()).where(SignInFailure.email_lower == email_lower, SignInFailure.at > since)
    )
    by_ip = await session.scalar(
        select(func.count()).where(SignInFailure.client_ip == client_ip, SignInFailure.at > since)
    )
    limit = settings.console_sign_in_max_failures
    return (by_email or 0) >= limit or (by_ip or 0) >= limit * PER_ADDRESS_FACTOR


async def begin_attempt(db: Database, settings: Settings, email_lower: str, client_ip: str) -> bool:
    """Record a sign-in attempt as a failure, unless the limit is reached (False: refuse it)."""
    email_lower, client_ip = email_lower[:320], client_ip[:64]
    async with db.writing() as session:
        await _serialise(session, email_lower, client_ip)
        if await _is_throttled(session, settings, email_lower, client_ip):
            return False
        now = utcnow()
        session.add(SignInFailure(email_lower=email_lower, client_ip=client_ip, at=now))
        old = now - timedelta(seconds=settings.console_sign_in_window_seconds)
        await session.execute(
            delete(SignInFailure).where(
                SignInFailure.at <= old,
                or_(SignInFailure.email_lower == email_lower, SignInFailure.client_ip == client_ip),
            )
        )
    return True


async def clear_failures(session: AsyncSession, email_lower: str) -> None:
    await session.execute(delete(SignInFailure).where(SignInFailure.email_lower == email_lower[:320]))
