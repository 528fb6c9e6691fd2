"""Server-side console sessions. The cookie carries a random token (HttpOnly, SameSite=Lax, Secure on
https); the database keeps its SHA-256, so sign-out and expiry take effect at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import Admin, ConsoleSession, utcnow
from provisio.domain.hashing import hash_secret

COOKIE = "provisio_session"


@dataclass(frozen=True)
class SignedIn:
    admin_id: str
    email: str


async def start_session(db: Database, settings: Settings, admin_id: str) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.writing() as session:
        session.add(
            ConsoleSession(
                token_hash=hash_secret(token),
                admin_id=admin_id,
                created_at=now,
                expires_at=now + timedelta(seconds=settings.console_session_ttl_seconds),
            )
        )
        await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    return token


async def end_session(db: Database, token: str) -> None:
    async with db.writing() as session:
        await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_secret(token)))


async def signed_in(request: Request) -> SignedIn | None:
    """Who this browser is signed in as (cached on the request)."""
    if hasattr(request.state, "signed_in"):
        cached: SignedIn | None = request.state.signed_in
        return cached
    token = request.cookies.get(COOKIE)
    result: SignedIn | None = None
    if token:
        db: Database = request.app.state.db
        async with db.reading() as session:
            row = (
                await session.execute(
                    select(Admin.id, Admin.email)
                    .join(ConsoleSession, ConsoleSession.admin_id == Admin.id)
                    .where(
                        ConsoleSession.token_hash == hash_secret(token), ConsoleSession.expires_at > utcnow()
                    )
                )
            ).first()
        if row is not None:
            result = SignedIn(admin_id=row.id, email=row.email)
    request.state.signed_in = result
    return result


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.console_session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
