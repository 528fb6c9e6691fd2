"""Resource-server side: is this access token good for this workspace's SCIM API right now?"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import OAuthClient, OAuthToken, Workspace, utcnow
from provisio.domain.hashing import hash_secret


async def access_token_client(
    session: AsyncSession, workspace: Workspace, token: str, now: datetime | None = None
) -> str | None:
    """The client ID behind a live, unexpired token issued to this workspace's current client for its
    current method; None for any other token."""
    result = await session.execute(
        select(OAuthClient.client_id)
        .select_from(OAuthToken)
        .join(OAuthClient, OAuthClient.id == OAuthToken.client_pk)
        .where(
            OAuthToken.access_token_hash == hash_secret(token),
            OAuthToken.workspace_id == workspace.id,
            OAuthToken.revoked_at.is_(None),
            OAuthToken.access_expires_at > (now or utcnow()),
            OAuthClient.revoked_at.is_(None),
            OAuthClient.grant_method == workspace.scim_auth_method,
        )
    )
    return result.scalar_one_or_none()
