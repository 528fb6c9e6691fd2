"""Sign-in throttling: too many failures for one e-mail address (or from one client address) in the
window refuse further attempts until the window has passed, whatever the password."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.models import SignInFailure, utcnow

PER_ADDRESS_FACTOR = 4  # one office behind one NAT may hold several admins


async def is_throttled(session: AsyncSession, settings: Settings, email_lower: str, client_ip: str) -> bool:
    since = utcnow() - timedelta(seconds=settings.console_sign_in_window_seconds)
    by_email = await session.scalar(
        select(func.count()).where(SignInFailure.email_lower == email_lower, SignInFailure.at > since)
    )
    by_ip = await session.scalar(
        select(func.count()).where(SignInFailure.client_ip == client_ip, SignInFailure.at > since)
    )
    limit = settings.console_sign_in_max_failures
    return (by_email or 0) >= limit or (by_ip or 0) >= limit * PER_ADDRESS_FACTOR


async def record_failure(session: AsyncSession, settings: Settings, email_lower: str, client_ip: str) -> None:
    now = utcnow()
    session.add(SignInFailure(email_lower=email_lower[:320], client_ip=client_ip[:64], at=now))
    old = now - timedelta(seconds=settings.console_sign_in_window_seconds)
    await session.execute(
        delete(SignInFailure).where(
            SignInFailure.at <= old,
            or_(SignInFailure.email_lower == email_lower, SignInFailure.client_ip == client_ip),
        )
    )


async def clear_failures(session: AsyncSession, email_lower: str) -> None:
    await session.execute(delete(SignInFailure).where(SignInFailure.email_lower == email_lower))
