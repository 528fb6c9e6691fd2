"""Server-side console sessions. The cookie carries a random token (HttpOnly, SameSite=Lax, and over
https Secure and ``__Host-`` prefixed, see ``cookies``); the database keeps its SHA-256, so sign-out and
expiry take effect at once. The console's CSRF tokens are derived from that hash (see ``csrf``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, select
from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings
from provisio.console import cookies
from provisio.db.engine import Database
from provisio.db.models import Admin, ConsoleSession, utcnow
from provisio.domain.hashing import hash_secret


@dataclass(frozen=True)
class SignedIn:
    admin_id: str
    email: str
    # The SHA-256 of the session token this request is authenticated with: what CSRF tokens bind to.
    session_hash: str = field(repr=False)


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
    token = session_token(request)
    result: SignedIn | None = None
    if token:
        token_hash = hash_secret(token)
        db: Database = request.app.state.db
        async with db.reading() as session:
            row = (
                await session.execute(
                    select(Admin.id, Admin.email)
                    .join(ConsoleSession, ConsoleSession.admin_id == Admin.id)
                    .where(ConsoleSession.token_hash == token_hash, ConsoleSession.expires_at > utcnow())
                )
            ).first()
        if row is not None:
            result = SignedIn(admin_id=row.id, email=row.email, session_hash=token_hash)
    request.state.signed_in = result
    return result


def resolved(request: Request) -> SignedIn | None:
    """What ``signed_in`` found for this request; it must have run (every page's handler awaits it)."""
    if not hasattr(request.state, "signed_in"):
        raise RuntimeError("signed_in() has not run for this request")
    cached: SignedIn | None = request.state.signed_in
    return cached


def session_token(request: Request) -> str | None:
    settings: Settings = request.app.state.settings
    return cookies.read(request, settings, cookies.SESSION)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    cookies.store(response, settings, cookies.SESSION, token, max_age=settings.console_session_ttl_seconds)


def clear_session_cookie(response: Response, settings: Settings) -> None:
    cookies.remove(response, settings, cookies.SESSION)
