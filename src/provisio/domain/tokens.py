"""Long-lived per-workspace SCIM bearer tokens (the legacy method). Only a SHA-256 of each is stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import ScimToken, Workspace, utcnow
from provisio.domain.errors import DomainError, Kind
from provisio.domain.hashing import hash_secret

TOKEN_PREFIX = "pvs_"


@dataclass(frozen=True)
class IssuedToken:
    id: str
    token: str


async def create_token(session: AsyncSession, workspace: Workspace, label: str = "") -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ScimToken(workspace_id=workspace.id, token_hash=hash_secret(token), label=label)
    session.add(row)
    await session.flush()
    return IssuedToken(id=row.id, token=token)


async def revoke_token(session: AsyncSession, workspace: Workspace, token_id: str) -> bool:
    result = await session.execute(
        update(ScimToken)
        .where(
            ScimToken.id == token_id, ScimToken.workspace_id == workspace.id, ScimToken.revoked_at.is_(None)
        )
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def why_not_revoked(session: AsyncSession, workspace: Workspace, token_id: str) -> DomainError:
    """Why ``revoke_token`` revoked nothing: no such token in this workspace, or revoked already."""
    revoked_at = await session.scalar(
        select(ScimToken.revoked_at).where(ScimToken.id == token_id, ScimToken.workspace_id == workspace.id)
    )
    if revoked_at is None:
        return DomainError(
            Kind.NOT_FOUND,
            f"Workspace {workspace.key} has no token {token_id!r}: `provisio token list {workspace.key}` "
            "shows its tokens' ids.",
        )
    return DomainError(
        Kind.CONFLICT,
        f"Token {token_id} was already revoked at {revoked_at:%Y-%m-%d %H:%M} UTC; nothing changed.",
    )


async def list_tokens(session: AsyncSession, workspace: Workspace) -> list[ScimToken]:
    result = await session.execute(
        select(ScimToken).where(ScimToken.workspace_id == workspace.id).order_by(ScimToken.created_at)
    )
    return list(result.scalars())
