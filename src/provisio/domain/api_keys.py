"""Operator API keys: deployment-wide credentials of the management API (``/api/v1``).

A key is shown once when it is made; only its SHA-256 is stored (``domain.hashing``), with its first
characters so that listings can tell keys apart."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import ApiKey, utcnow
from provisio.domain.errors import DomainError, Kind
from provisio.domain.hashing import hash_secret
from provisio.domain.host_events import OPERATOR, Actor

KEY_PREFIX = "pvk_"
VISIBLE = 12  # characters of the key kept in clear: the prefix and 8 random ones
MAX_NAME = 200
# last_used_at is written at most this often per key, so that a busy integration does not turn every
# read into a write.
USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    id: int
    name: str
    key: str  # shown once


async def create_key(session: AsyncSession, name: str) -> IssuedKey:
    name = name.strip()
    if not name:
        raise DomainError(Kind.INVALID, "An API key needs a name.")
    if len(name) > MAX_NAME:
        raise DomainError(Kind.INVALID, f"Keep the name under {MAX_NAME} characters.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_secret(key), prefix=key[:VISIBLE], created_at=utcnow())
    session.add(row)
    await session.flush()
    return IssuedKey(id=row.id, name=row.name, key=key)


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.execute(select(ApiKey).order_by(ApiKey.id))).scalars())


async def revoke_key(session: AsyncSession, key_id: int) -> ApiKey:
    """Revoke a key; it stops working at once. Revoking a revoked key keeps its first revocation."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise DomainError(Kind.NOT_FOUND, f"No API key with id {key_id}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


async def find_live_key(session: AsyncSession, presented: str) -> ApiKey | None:
    """The live key ``presented`` is, else None (unknown, malformed or revoked)."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    row = (
        await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_secret(presented)))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    return row


def use_is_stale(key: ApiKey, now: datetime) -> bool:
    return key.last_used_at is None or now - key.last_used_at >= USE_RESOLUTION


async def note_use(session: AsyncSession, key_id: int, now: datetime) -> None:
    """Record a use of the key, unless one was recorded less than ``USE_RESOLUTION`` ago; conditional,
    so concurrent requests of the same minute write it once."""
    stale = ApiKey.last_used_at.is_(None) | (ApiKey.last_used_at <= now - USE_RESOLUTION)
    await session.execute(
        update(ApiKey).where(ApiKey.id == key_id, stale).values(last_used_at=now),
        execution_options={"synchronize_session": False},
    )


def actor(key: ApiKey) -> str:
    """How the seat ledger and admin grants name a change made with this key."""
    return f"API key {key.name}"


def event_actor(key: ApiKey) -> Actor:
    """How the host events name a change made with this key."""
    return Actor(OPERATOR, str(key.id), key.name)
