"""Server-side console sessions. The cookie carries a random token (HttpOnly, SameSite=Lax, and over
https Secure and ``__Host-`` prefixed, see ``cookies``); the database keeps its SHA-256, so sign-out and
expiry take effect at once. The console's CSRF tokens are derived from that hash (see ``csrf``).

A session begun with a sign-in link (``portal_routes``) is limited to the link's workspace
(``SignedIn.may_reach``) and keeps the link's return URL for the console's "Back to <host>" link."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings
from provisio.console import cookies
from provisio.db.engine import Database
from provisio.db.models import Admin, ConsoleSession, utcnow
from provisio.domain.hashing import hash_secret
from provisio.domain.return_urls import display_host


@dataclass(frozen=True)
class SignedIn:
    admin_id: str
    email: str
    # The SHA-256 of the session token this request is authenticated with: what CSRF tokens bind to.
    session_hash: str = field(repr=False)
    # A session begun with a sign-in link reaches this workspace only; None: every one of the account.
    workspace_id: str | None = None
    # Where "Back to <host>" leads (a sign-in link's return URL, checked against the allow-list).
    return_url: str | None = None

    def may_reach(self, workspace_id: str) -> bool:
        """Whether this session may act on the workspace at all (being its admin is checked apart)."""
        return self.workspace_id is None or self.workspace_id == workspace_id

    @property
    def return_host(self) -> str:
        return display_host(self.return_url) if self.return_url else ""


async def add_session(
    session: AsyncSession,
    settings: Settings,
    admin_id: str,
    *,
    workspace_id: str | None = None,
    return_url: str | None = None,
) -> str:
    """A new session of ``admin_id`` in the caller's transaction; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        ConsoleSession(
            token_hash=hash_secret(token),
            admin_id=admin_id,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.console_session_ttl_seconds),
            workspace_id=workspace_id,
            return_url=return_url,
        )
    )
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    return token


async def start_session(db: Database, settings: Settings, admin_id: str) -> str:
    async with db.writing() as session:
        return await add_session(session, settings, admin_id)


async def drop_session(session: AsyncSession, token: str) -> None:
    """End the session of ``token`` in the caller's transaction."""
    await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_secret(token)))


async def end_session(db: Database, token: str) -> None:
    async with db.writing() as session:
        await drop_session(session, token)


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
                    select(Admin.id, Admin.email, ConsoleSession.workspace_id, ConsoleSession.return_url)
                    .join(ConsoleSession, ConsoleSession.admin_id == Admin.id)
                    .where(ConsoleSession.token_hash == token_hash, ConsoleSession.expires_at > utcnow())
                )
            ).first()
        if row is not None:
            result = SignedIn(
                admin_id=row.id,
                email=row.email,
                session_hash=token_hash,
                workspace_id=row.workspace_id,
                return_url=row.return_url,
            )
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
